//! Delegation `paths` patterns (§4.5 PATHPATTERN), matched like python-tuf: the pattern and the
//! target path are split on `/`, must have the same number of segments, and each segment is
//! matched with Unix shell rules (`*`, `?`, `[seq]`, `[!seq]`, as Python's `fnmatch`), so a
//! wildcard never crosses a `/`.
//!
//! The matcher is linear-time with one backtrack point (no exponential blow-up on `*a*a*a*b`).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Star,
    Any,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
    Literal(char),
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star => true,
            Token::Any => true,
            Token::Literal(l) => *l == c,
            Token::Class { negated, items } => {
                items.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
            }
        }
    }
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
                i += 1;
            }
            '?' => {
                out.push(Token::Any);
                i += 1;
            }
            '[' => {
                // Python's fnmatch: `[!` negates, a `]` right after `[` or `[!` is literal, and a
                // `[` without a closing `]` is a literal `[`.
                let mut j = i + 1;
                let negated = chars.get(j) == Some(&'!');
                if negated {
                    j += 1;
                }
                let start = j;
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push(Token::Literal('['));
                    i += 1;
                    continue;
                }
                let body = &chars[start..j];
                let mut items = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        if body[k] <= body[k + 2] {
                            items.push((body[k], body[k + 2]));
                        }
                        k += 3;
                    } else {
                        items.push((body[k], body[k]));
                        k += 1;
                    }
                }
                out.push(Token::Class { negated, items });
                i = j + 1;
            }
            c => {
                out.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    out
}

/// Matches one segment against one pattern segment.
fn segment_matches(pattern: &str, text: &str) -> bool {
    let tokens = tokenize(pattern);
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut s) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while s < text.len() {
        if t < tokens.len() && tokens[t] == Token::Star {
            backtrack = Some((t, s));
            t += 1;
        } else if t < tokens.len() && tokens[t].matches(text[s]) {
            t += 1;
            s += 1;
        } else if let Some((bt, bs)) = backtrack {
            t = bt + 1;
            s = bs + 1;
            backtrack = Some((bt, bs + 1));
        } else {
            return false;
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Star)
}

/// True if `target` is matched by `pattern` (python-tuf's `_is_target_in_pathpattern`).
pub(crate) fn matches(pattern: &str, target: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let t: Vec<&str> = target.split('/').collect();
    p.len() == t.len() && p.iter().zip(&t).all(|(p, t)| segment_matches(p, t))
}

#[cfg(test)]
mod test {
    use super::matches;

    #[test]
    fn spec_examples() {
        assert!(matches("targets/*.tgz", "targets/foo.tgz"));
        assert!(!matches("targets/*.tgz", "targets/foo.txt"));
        assert!(matches("foo-version-?.tgz", "foo-version-2.tgz"));
        assert!(!matches("foo-version-?.tgz", "foo-version-alpha.tgz"));
        assert!(matches("*.tgz", "foo.tgz"));
        assert!(
            !matches("*.tgz", "targets/foo.tgz"),
            "a wildcard never crosses '/'"
        );
        assert!(matches("foo.tgz", "foo.tgz"));
        assert!(!matches("foo.tgz", "foo.tgzz"));
    }

    #[test]
    fn wildcards_and_classes() {
        assert!(matches("*", "anything"));
        assert!(!matches("*", "a/b"));
        assert!(matches("*/*", "a/b"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("*a*a*a*b", &format!("{}b", "a".repeat(40))));
        assert!(!matches("*a*a*a*b", &"a".repeat(5000)));
        assert!(matches("file[0-9].img", "file7.img"));
        assert!(!matches("file[!0-9].img", "file7.img"));
        assert!(matches("file[!0-9].img", "fileX.img"));
        assert!(matches("[]x]", "]"));
        assert!(matches("a[b", "a[b"), "an unclosed '[' is literal");
        assert!(matches("", ""));
        assert!(!matches("", "x"));
    }
}
