//! Schedule tables and SVG charts (pure string generation).

use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::schedule::{WaveSchedule, WaveSpan, bottlerocket_opens_at};
use crate::seed::{MAX_SEED, Seed};
use crate::time::format_timestamp;

/// One row of a schedule table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The wave as hosts see it.
    #[serde(flatten)]
    pub span: WaveSpan,
    /// Share of the fleet in this wave, percent.
    pub wave_share: f64,
    /// Share of the fleet eligible once this wave is fully open, percent.
    pub fleet_share: f64,
}

/// The table rows for a schedule.
pub fn rows(schedule: &WaveSchedule) -> Vec<Row> {
    schedule
        .spans()
        .into_iter()
        .map(|span| Row {
            wave_share: f64::from(span.seeds()) * 100.0 / f64::from(MAX_SEED),
            fleet_share: f64::from(span.last_seed + 1) * 100.0 / f64::from(MAX_SEED),
            span,
        })
        .collect()
}

fn rel(t: Timestamp, start: Option<Timestamp>) -> String {
    let Some(start) = start else {
        return String::new();
    };
    let d = t.duration_since(start);
    let sign = if d.is_negative() { "-" } else { "+" };
    let mut secs = d.abs().as_secs();
    let mut parts = Vec::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            parts.push(format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    if parts.is_empty() {
        parts.push("0s".into());
    }
    format!("{sign}{}", parts.join(""))
}

/// A plain-text table: wave, seeds, hosts, opens, fully open, fleet share.
pub fn render_table(schedule: &WaveSchedule, start: Option<Timestamp>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<5} {:<11} {:>6} {:<34} {:<34} {:>11}",
        "wave", "seeds", "share", "opens", "fully open", "fleet share"
    );
    for r in rows(schedule) {
        let s = r.span;
        let opens = format!("{} {}", format_timestamp(s.opens), rel(s.opens, start));
        let closes = format!("{} {}", format_timestamp(s.closes), rel(s.closes, start));
        let _ = writeln!(
            out,
            "{:<5} {:<11} {:>5.1}% {:<34} {:<34} {:>10.1}%",
            s.index,
            format!("{}-{}", s.first_seed, s.last_seed),
            r.wave_share,
            opens.trim_end(),
            closes.trim_end(),
            r.fleet_share
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Picks a tick step for a time axis `total` long: at most about 12 ticks, on whole hours or days.
fn tick_step(total: SignedDuration) -> SignedDuration {
    const STEPS_H: [i64; 11] = [1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720];
    let hours = total.as_secs() / 3_600;
    let h = STEPS_H
        .iter()
        .copied()
        .find(|h| hours / h <= 12)
        .unwrap_or(720);
    SignedDuration::from_hours(h)
}

/// A short label for an offset from the release start: `+0`, `+6h`, `+1d`, `+1d12h`.
fn offset_label(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return "start".into();
    }
    let (days, hours, mins) = (secs / 86_400, (secs % 86_400) / 3_600, (secs % 3_600) / 60);
    let mut s = String::from("+");
    if days > 0 {
        let _ = write!(s, "{days}d");
    }
    if hours > 0 {
        let _ = write!(s, "{hours}h");
    }
    if mins > 0 && days == 0 {
        let _ = write!(s, "{mins}m");
    }
    s
}

/// An SVG chart of the share of the fleet eligible over time from the release `start`, with a
/// marker and a readable opening time for every wave; Bottlerocket's curve for the same manifest
/// waves is drawn dashed for comparison. Layout: title, a band of wave labels above the plot
/// (staggered so they never overlap), the plot (x from the release start, ticks on whole hours or
/// days labelled by offset and date), the legend in the plot's empty lower-right corner, and a
/// table of the waves' opening times below. Self-contained, no scripts.
pub fn render_svg(schedule: &WaveSchedule, start: Timestamp, title: &str) -> String {
    const W: f64 = 960.0;
    const L: f64 = 70.0;
    const R: f64 = 40.0;
    const LABEL_ROW: f64 = 14.0;
    const PH: f64 = 320.0;
    let pw = W - L - R;
    let spans = schedule.spans();
    let (Some(end), false) = (schedule.end(), spans.is_empty()) else {
        let h = 120.0;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="{W}" height="{h}" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{L}" y="24" font-size="16">{}</text><text x="{L}" y="60">no waves: every host is eligible at once</text>"#,
            esc(title)
        );
        svg.push_str("</svg>\n");
        return svg;
    };
    // Time axis: from the release start (or the first wave, if a wave opens before it) to a
    // little after the last host's opening time.
    let first = schedule.iter().next().map(|(_, t)| t).unwrap_or(start);
    let t0 = start.min(first);
    let span = end.duration_since(t0).max(SignedDuration::from_hours(1));
    let t1 = end + span / 20;
    let total = t1.duration_since(t0).as_secs_f64();
    let x = |t: Timestamp| L + pw * (t.duration_since(t0).as_secs_f64() / total).clamp(0.0, 1.0);

    // Wave labels above the plot: greedy rows so that no two labels overlap.
    let label_w = |s: &str| 6.2 * s.chars().count() as f64 + 6.0;
    let mut rows_end: Vec<f64> = Vec::new();
    let mut placed = Vec::new();
    for s in &spans {
        let text = format!(
            "w{} {}",
            s.index,
            offset_label(s.opens.duration_since(start))
        );
        let xx = x(s.opens);
        let w = label_w(&text);
        // Anchor at the marker; flip to the left of it near the right edge.
        let (lx, anchor) = if xx + w > W - 4.0 {
            (xx - w, "end")
        } else {
            (xx, "start")
        };
        let row = match rows_end.iter().position(|&e| e < lx) {
            Some(r) => r,
            None => {
                rows_end.push(f64::MIN);
                rows_end.len() - 1
            }
        };
        rows_end[row] = lx + w;
        placed.push((xx, text, row, anchor));
    }
    let band = LABEL_ROW * rows_end.len().max(1) as f64 + 8.0;
    let t_plot = 40.0 + band;
    let axis_h = 46.0;
    let table_top = t_plot + PH + axis_h + 26.0;
    let h = table_top + 18.0 * (spans.len() as f64 + 1.0) + 12.0;
    let y = |share: f64| t_plot + PH * (1.0 - share);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h:.0}" viewBox="0 0 {W} {h:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{h:.0}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{L}" y="24" font-size="16">{}</text>"#,
        esc(title)
    );

    // Horizontal grid and y labels.
    for pct in (0..=100).step_by(20) {
        let yy = y(f64::from(pct) / 100.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{L}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{pct}%</text>"##,
            L + pw,
            L - 6.0,
            yy + 4.0
        );
    }
    // Time ticks on whole steps after the start: offset label and UTC date/time.
    let step = tick_step(t1.duration_since(t0));
    let mut k = 0i64;
    while let Ok(t) = start.checked_add(step * k as i32) {
        if t > t1 {
            break;
        }
        k += 1;
        if t < t0 {
            continue;
        }
        let xx = x(t);
        let date = t.strftime(if step.as_secs() % 86_400 == 0 {
            "%m-%d"
        } else {
            "%m-%d %H:%M"
        });
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{t_plot:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#f0f0f0"/><line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="black"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text><text x="{xx:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#666">{date}</text>"##,
            t_plot + PH,
            t_plot + PH,
            t_plot + PH + 5.0,
            t_plot + PH + 18.0,
            offset_label(t.duration_since(start)),
            t_plot + PH + 31.0,
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{L}" y1="{t_plot:.1}" x2="{L}" y2="{:.1}" stroke="black"/><line x1="{L}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"##,
        t_plot + PH,
        t_plot + PH,
        L + pw,
        t_plot + PH
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time since the release start (UTC date below); y: share of the fleet eligible to update</text>"#,
        L + pw / 2.0,
        t_plot + PH + axis_h
    );
    // Wave markers and their labels in the band above the plot.
    for (xx, text, row, anchor) in &placed {
        let ly = 40.0 + LABEL_ROW * (*row as f64 + 1.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="3,3"/><text x="{:.1}" y="{ly:.1}" font-size="11" fill="#333" text-anchor="{anchor}">{}</text>"##,
            ly + 3.0,
            t_plot + PH,
            if *anchor == "end" { xx - 2.0 } else { xx + 2.0 },
            esc(text),
        );
    }

    // Step curves: ours (solid), Bottlerocket's (dashed).
    let curve = |times: Vec<Timestamp>| -> String {
        let mut sorted = times;
        sorted.sort();
        let mut pts: Vec<String> = Vec::new();
        let mut push = |px: f64, py: f64| {
            let p = format!("{px:.1},{py:.1}");
            if pts.last() != Some(&p) {
                pts.push(p);
            }
        };
        push(x(t0), y(0.0));
        let share = |c: usize| y(c as f64 / f64::from(MAX_SEED));
        let mut count = 0usize;
        let mut i = 0;
        while i < sorted.len() {
            let t = sorted[i];
            while i < sorted.len() && sorted[i] == t {
                i += 1;
            }
            push(x(t), share(count));
            count = i;
            push(x(t), share(count));
        }
        push(x(t1), share(count));
        pts.join(" ")
    };
    let ours: Vec<Timestamp> = Seed::all()
        .map(|s| schedule.opens_at(s).unwrap_or(t0).max(t0))
        .collect();
    let theirs: Vec<Timestamp> = Seed::all()
        .map(|s| bottlerocket_opens_at(schedule, s).unwrap_or(t0).max(t0))
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline fill="none" stroke="#d62728" stroke-width="1.5" stroke-dasharray="6,4" points="{}"/>"##,
        curve(theirs)
    );
    let _ = writeln!(
        svg,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2.5" points="{}"/>"##,
        curve(ours)
    );
    // Legend in the lower-right corner of the plot: the curves are at 100 % there.
    let (lw, lh) = (270.0, 44.0);
    let (lx, ly) = (L + pw - lw - 8.0, t_plot + PH - lh - 8.0);
    let _ = writeln!(
        svg,
        r##"<rect x="{lx:.1}" y="{ly:.1}" width="{lw}" height="{lh}" fill="white" stroke="#ccc"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#1f77b4" stroke-width="2.5"/><text x="{:.1}" y="{:.1}">this system</text><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="6,4"/><text x="{:.1}" y="{:.1}">Bottlerocket updog (same manifest)</text>"##,
        lx + 8.0,
        ly + 14.0,
        lx + 38.0,
        ly + 14.0,
        lx + 44.0,
        ly + 18.0,
        lx + 8.0,
        ly + 32.0,
        lx + 38.0,
        ly + 32.0,
        lx + 44.0,
        ly + 36.0,
    );
    // The waves' opening times, readable as text.
    let _ = writeln!(
        svg,
        r##"<text x="{L}" y="{table_top:.1}" font-weight="bold">wave</text><text x="{:.1}" y="{table_top:.1}" font-weight="bold">seeds</text><text x="{:.1}" y="{table_top:.1}" font-weight="bold">opens (UTC)</text><text x="{:.1}" y="{table_top:.1}" font-weight="bold">last host (UTC)</text><text x="{:.1}" y="{table_top:.1}" font-weight="bold">fleet eligible</text>"##,
        L + 60.0,
        L + 160.0,
        L + 420.0,
        L + 680.0,
    );
    for s in &spans {
        let yy = table_top + 18.0 * (s.index as f64 + 1.0);
        let fleet = f64::from(s.last_seed + 1) * 100.0 / f64::from(MAX_SEED);
        let _ = writeln!(
            svg,
            r##"<text x="{L}" y="{yy:.1}">w{}</text><text x="{:.1}" y="{yy:.1}">{}–{}</text><text x="{:.1}" y="{yy:.1}">{} ({})</text><text x="{:.1}" y="{yy:.1}">{} ({})</text><text x="{:.1}" y="{yy:.1}">{fleet:.1}%</text>"##,
            s.index,
            L + 60.0,
            s.first_seed,
            s.last_seed,
            L + 160.0,
            format_timestamp(s.opens),
            offset_label(s.opens.duration_since(start)),
            L + 420.0,
            format_timestamp(s.closes),
            offset_label(s.closes.duration_since(start)),
            L + 680.0,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Writes [`render_svg`]'s chart to `path`.
pub fn write_svg(
    path: &std::path::Path,
    schedule: &WaveSchedule,
    start: Timestamp,
    title: &str,
) -> crate::Result<()> {
    use snafu::ResultExt as _;
    abos_fsio::write_atomic(
        path,
        render_svg(schedule, start, title).as_bytes(),
        abos_fsio::PUBLIC,
    )
    .map_err(std::io::Error::from)
    .context(crate::error::WriteFileSnafu { path })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::policy::WavePolicy;

    fn chart(policy: &str) -> (WaveSchedule, Timestamp, String) {
        let start: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let schedule = WavePolicy::builtin(policy)
            .unwrap()
            .schedule(start)
            .unwrap();
        let svg = render_svg(&schedule, start, policy);
        (schedule, start, svg)
    }

    /// The `(x, y, text)` of every `<text>` element whose content matches `pred`.
    fn texts(svg: &str, pred: impl Fn(&str) -> bool) -> Vec<(f64, f64, String)> {
        let mut out = Vec::new();
        for part in svg.split("<text ").skip(1) {
            let attr = |name: &str| -> f64 {
                let k = format!("{name}=\"");
                let i = part.find(&k).unwrap() + k.len();
                part[i..].split('"').next().unwrap().parse().unwrap()
            };
            let body = &part[part.find('>').unwrap() + 1..part.find("</text>").unwrap()];
            if pred(body) {
                out.push((attr("x"), attr("y"), body.to_string()));
            }
        }
        out
    }

    #[test]
    fn axis_starts_at_release_start_with_whole_step_ticks() {
        for policy in ["default", "accelerated", "slow-roll", "ohno"] {
            let (_, _, svg) = chart(policy);
            let start = texts(&svg, |t| t == "start");
            assert_eq!(start.len(), 1, "{policy}: one 'start' tick");
            assert!(
                (start[0].0 - 70.0).abs() < 0.01,
                "{policy}: x axis begins at the start"
            );
            let ticks = texts(&svg, |t| t.starts_with('+') && !t.contains(' '));
            assert!(
                ticks.len() >= 3,
                "{policy}: at least 3 ticks after the start: {ticks:?}"
            );
            assert!(
                ticks.len() <= 16,
                "{policy}: readable tick count: {}",
                ticks.len()
            );
        }
    }

    #[test]
    fn every_wave_opening_time_is_readable() {
        for policy in ["default", "accelerated", "slow-roll", "ohno"] {
            let (schedule, _, svg) = chart(policy);
            for span in schedule.spans() {
                let opens = format_timestamp(span.opens);
                assert!(
                    svg.contains(&opens),
                    "{policy}: wave {} opens {opens}",
                    span.index
                );
            }
        }
    }

    #[test]
    fn wave_labels_do_not_overlap_each_other_or_the_plot() {
        for policy in ["default", "accelerated", "slow-roll", "ohno"] {
            let (_, _, svg) = chart(policy);
            let labels = texts(&svg, |t| {
                t.starts_with('w') && t.contains(' ') && !t.contains('–')
            });
            let labels: Vec<_> = labels.into_iter().filter(|(_, y, _)| *y < 100.0).collect();
            assert!(!labels.is_empty(), "{policy}: wave labels drawn");
            // Labels are in the band above the plot, which starts below the last label row.
            let plot_top = texts(&svg, |t| t == "100%")[0].1 - 4.0;
            for (i, a) in labels.iter().enumerate() {
                assert!(a.1 < plot_top, "{policy}: label {} above the plot", a.2);
                for b in &labels[i + 1..] {
                    if (a.1 - b.1).abs() > 0.1 {
                        continue;
                    }
                    // Same row: the text extents (6.2 px per character) must not overlap.
                    let ext = |l: &(f64, f64, String)| {
                        let w = 6.2 * l.2.chars().count() as f64;
                        if svg.contains(&format!("x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\" text-anchor=\"end\"", l.0, l.1)) {
                            (l.0 - w, l.0)
                        } else {
                            (l.0, l.0 + w)
                        }
                    };
                    let (ea, eb) = (ext(a), ext(b));
                    assert!(
                        ea.1 <= eb.0 || eb.1 <= ea.0,
                        "{policy}: labels {} and {} overlap",
                        a.2,
                        b.2
                    );
                }
            }
        }
    }
}
