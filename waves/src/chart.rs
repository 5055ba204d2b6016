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

/// An SVG chart of the share of the fleet eligible over time, with wave markers; Bottlerocket's
/// curve for the same manifest waves is drawn dashed for comparison. Self-contained, no scripts.
pub fn render_svg(schedule: &WaveSchedule, title: &str) -> String {
    const W: f64 = 900.0;
    const H: f64 = 480.0;
    const L: f64 = 70.0;
    const R: f64 = 30.0;
    const T: f64 = 50.0;
    const B: f64 = 70.0;
    let (pw, ph) = (W - L - R, H - T - B);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{L}" y="24" font-size="16">{}</text>"#,
        esc(title)
    );
    let (Some(first), Some(end)) = (schedule.iter().next().map(|(_, t)| t), schedule.end()) else {
        let _ = writeln!(
            svg,
            r#"<text x="{L}" y="{}">no waves: every host is eligible at once</text>"#,
            T + 20.0
        );
        svg.push_str("</svg>\n");
        return svg;
    };
    // Time axis: from an eighth of the span before the first wave to a bit after the end.
    let span = end.duration_since(first).max(SignedDuration::from_hours(1));
    let pad = span / 16;
    let (t0, t1) = (first - pad, end + pad);
    let total = t1.duration_since(t0).as_secs_f64();
    let x = |t: Timestamp| L + pw * (t.duration_since(t0).as_secs_f64() / total).clamp(0.0, 1.0);
    let y = |share: f64| T + ph * (1.0 - share);

    // Grid and axes.
    for pct in (0..=100).step_by(20) {
        let yy = y(f64::from(pct) / 100.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{L}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{pct}%</text>"##,
            L + pw,
            L - 6.0,
            yy + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{L}" y1="{T}" x2="{L}" y2="{:.1}" stroke="black"/><line x1="{L}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"##,
        T + ph,
        T + ph,
        L + pw,
        T + ph
    );
    // Wave markers.
    for (i, (key, at)) in schedule.iter().filter(|(k, _)| *k <= MAX_SEED).enumerate() {
        let xx = x(at);
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{T}" x2="{xx:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="3,3"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#555">w{i} ({key})</text>"##,
            T + ph,
            xx + 2.0,
            T + 12.0 + 12.0 * (i % 3) as f64
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{L}" y="{:.1}" font-size="11">{}</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
        T + ph + 18.0,
        format_timestamp(t0),
        L + pw,
        T + ph + 18.0,
        format_timestamp(t1)
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (UTC); y: share of the fleet eligible to update</text>"#,
        L + pw / 2.0,
        H - 18.0
    );

    // Step curves: ours (solid), Bottlerocket's (dashed).
    let curve = |times: Vec<Timestamp>| -> String {
        let mut sorted = times;
        sorted.sort();
        // Step curve in whole-pixel-tenths; consecutive duplicate points are dropped.
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
        .map(|s| schedule.opens_at(s).unwrap_or(t0))
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
    // Legend.
    let lx = L + 12.0;
    let ly = T + 50.0;
    let _ = writeln!(
        svg,
        r##"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="#1f77b4" stroke-width="2.5"/><text x="{:.1}" y="{:.1}">this system</text>"##,
        lx + 30.0,
        lx + 36.0,
        ly + 4.0
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{lx}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="6,4"/><text x="{:.1}" y="{:.1}">Bottlerocket updog (same manifest)</text>"##,
        ly + 18.0,
        lx + 30.0,
        ly + 18.0,
        lx + 36.0,
        ly + 22.0
    );
    svg.push_str("</svg>\n");
    svg
}
