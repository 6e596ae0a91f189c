//! Inline SVG charts drawn on the server from the per-minute audit aggregates
//! ([`reconciler::audit_minutes`]): calls per minute, latency p50/p95 and error rate per server
//! over a window, with the deploys in that window marked on the time axis. Pure: no I/O, no
//! script, no inline style (the stylesheet colors the series by class), each chart with a
//! `<title>`/`<desc>` and its numbers in a table for screen readers.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use reconciler::audit_minutes::Minute;

/// Series drawn per chart (the busiest servers; the rest are summed into none).
pub const MAX_SERIES: usize = 6;

const W: f64 = 640.0;
const H: f64 = 180.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// The aggregates of one server, one per slot.
struct Series {
    server: String,
    slots: Vec<Minute>,
}

/// The window a set of charts covers: `minutes` minutes ending at `end`, in slots of
/// [`Window::bucket`] minutes (one per aggregate row of a server).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub end: DateTime<Utc>,
    pub minutes: i64,
}

impl Window {
    pub fn start(&self) -> DateTime<Utc> {
        self.end - Duration::minutes(self.minutes)
    }

    /// Minutes per slot: 1 up to an hour, 10 up to 6 hours, 60 beyond (at most 168 slots a week).
    pub fn bucket(&self) -> i64 {
        match self.minutes {
            m if m <= 60 => 1,
            m if m <= 360 => 10,
            _ => 60,
        }
    }

    /// How many characters of a `YYYY-MM-DDTHH:MM` minute name a bucket (16, 15 or 13): what
    /// [`reconciler::Store::audit_minutes`] groups by.
    pub fn prefix(&self) -> usize {
        match self.bucket() {
            1 => 16,
            10 => 15,
            _ => 13,
        }
    }

    /// Points per chart.
    pub fn slots(&self) -> usize {
        usize::try_from(self.minutes / self.bucket()).unwrap_or(1).max(2)
    }

    /// The `YYYY-MM-DDTHH:MM` of the window's first minute (the store's `since`).
    pub fn since(&self) -> String {
        self.start().format("%Y-%m-%dT%H:%M").to_string()
    }

    /// The slot of an RFC 3339 time or a bucket's start (`YYYY-MM-DDTHH[:M[M]]`), if inside.
    fn slot(&self, at: &str) -> Option<usize> {
        let t = DateTime::parse_from_rfc3339(at).or_else(|_| {
            let pad = "0000-00-00T00:00".get(at.len()..).unwrap_or("");
            DateTime::parse_from_rfc3339(&format!("{at}{pad}:00Z"))
        });
        let off = (t.ok()?.with_timezone(&Utc) - self.start()).num_seconds();
        let width = self.bucket() * 60;
        let slot = usize::try_from(off.div_euclid(width)).ok()?;
        (off >= 0 && slot < self.slots()).then_some(slot)
    }
}

fn series(minutes: &[Minute], w: &Window) -> Vec<Series> {
    let mut by: BTreeMap<&str, Vec<Minute>> = BTreeMap::new();
    for m in minutes {
        let Some(slot) = w.slot(&m.minute) else { continue };
        by.entry(&m.server).or_insert_with(|| vec![Minute::default(); w.slots()])[slot].merge(m);
    }
    let mut out: Vec<Series> = by.into_iter().map(|(s, slots)| Series { server: s.to_string(), slots }).collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.slots.iter().map(|m| m.calls).sum::<i64>()));
    out.truncate(MAX_SERIES);
    out
}

/// One chart: a line per series (`None` values leave a gap), y from 0 to the max.
struct Chart<'a> {
    id: &'a str,
    title: &'a str,
    unit: &'a str,
    lines: Vec<(usize, &'a str, Vec<Option<f64>>)>,
}

fn x_of(i: usize, slots: usize) -> f64 {
    let f = i as f64 / (slots - 1) as f64;
    LEFT + f * (W - LEFT - 4.0)
}

fn fmt(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn draw(c: &Chart<'_>, w: &Window, deploys: &[(usize, String)]) -> Markup {
    let max = c.lines.iter().flat_map(|(_, _, v)| v.iter().flatten()).fold(0.0_f64, |a, b| a.max(*b));
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let y_of = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - v / top);
    let path = |vals: &[Option<f64>]| {
        let mut d = String::new();
        let mut pen = false;
        for (i, v) in vals.iter().enumerate() {
            match v {
                Some(v) => {
                    d.push_str(&format!("{}{:.1},{:.1} ", if pen { "L" } else { "M" }, x_of(i, w.slots()), y_of(*v)));
                    pen = true;
                }
                None => pen = false,
            }
        }
        d
    };
    let summary = c
        .lines
        .iter()
        .map(|(_, name, v)| {
            let peak = v.iter().flatten().fold(0.0_f64, |a, b| a.max(*b));
            format!("{name}: peak {} {}", fmt(peak), c.unit)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let title_id = format!("{}-t", c.id);
    let desc_id = format!("{}-d", c.id);
    html! {
        figure.plot {
            figcaption #(c.id) { (c.title) }
            svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-labelledby=(format!("{title_id} {desc_id}")) xmlns="http://www.w3.org/2000/svg" {
                title #(title_id) { (c.title) }
                desc #(desc_id) { (if summary.is_empty() { "No calls in this window.".to_string() } else { summary.clone() }) }
                line.axis x1=(LEFT) y1=(H - BOTTOM) x2=(W - 4.0) y2=(H - BOTTOM) {}
                line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) {}
                line.grid x1=(LEFT) y1=(y_of(max)) x2=(W - 4.0) y2=(y_of(max)) {}
                text x=(LEFT - 4.0) y=(y_of(max) + 4.0) text-anchor="end" { (fmt(max)) }
                text x=(LEFT - 4.0) y=(H - BOTTOM + 4.0) text-anchor="end" { "0" }
                text x=(LEFT) y=(H - 4.0) { (w.start().format("%H:%M")) }
                text x=(W - 4.0) y=(H - 4.0) text-anchor="end" { (w.end.format("%H:%M UTC")) }
                @for (slot, rev) in deploys {
                    line.deploy x1=(x_of(*slot, w.slots())) y1=(TOP) x2=(x_of(*slot, w.slots())) y2=(H - BOTTOM) { title { "deploy " (rev) } }
                }
                @for (color, name, vals) in &c.lines {
                    path class=(format!("line s{}{}", color % MAX_SERIES, if name.ends_with("p95") { " p95" } else { "" })) d=(path(vals)) { title { (name) } }
                }
            }
            ul.legend {
                @for (color, name, _) in &c.lines {
                    li { span class=(format!("swatch s{}", color % MAX_SERIES)) aria-hidden="true" {} (name) }
                }
            }
        }
    }
}

/// The charts of one project's window (`minutes` of its servers, `deploys` as (finished_at,
/// revision)), or a notice when there was no call.
pub fn charts(minutes: &[Minute], deploys: &[(String, String)], w: &Window) -> Markup {
    let all = series(minutes, w);
    if all.is_empty() {
        return html! { p.notice { "No calls in the last " (w.minutes) " minutes." } };
    }
    let per_minute = w.bucket() as f64;
    let marks: Vec<(usize, String)> =
        deploys.iter().filter_map(|(at, rev)| w.slot(at).map(|s| (s, rev.chars().take(12).collect()))).collect();
    let calls = Chart {
        id: "plot-calls",
        title: "Calls per minute",
        unit: "calls/min",
        lines: all
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.server.as_str(), s.slots.iter().map(|m| Some(m.calls as f64 / per_minute)).collect()))
            .collect(),
    };
    let mut latency = Vec::new();
    let mut names = Vec::new();
    for s in &all {
        names.push((format!("{} p50", s.server), format!("{} p95", s.server)));
    }
    for (i, (s, (p50, p95))) in all.iter().zip(&names).enumerate() {
        latency.push((i, p50.as_str(), s.slots.iter().map(|m| m.percentile_us(50.0).map(|u| u as f64 / 1000.0)).collect()));
        latency.push((i, p95.as_str(), s.slots.iter().map(|m| m.percentile_us(95.0).map(|u| u as f64 / 1000.0)).collect()));
    }
    let latency = Chart { id: "plot-latency", title: "Latency p50 / p95 (ms, bucket upper bounds)", unit: "ms", lines: latency };
    let errors = Chart {
        id: "plot-errors",
        title: "Error rate (%)",
        unit: "%",
        lines: all
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (i, s.server.as_str(), s.slots.iter().map(|m| (m.calls > 0).then(|| 100.0 * m.errors as f64 / m.calls as f64)).collect())
            })
            .collect(),
    };
    html! {
        (draw(&calls, w, &marks))
        (draw(&latency, w, &marks))
        (draw(&errors, w, &marks))
        details {
            summary { "The numbers" }
            div.scroll { table {
                caption { "Per server over the window" }
                thead { tr { th scope="col" { "Server" } th scope="col" { "Calls" } th scope="col" { "Errors" } th scope="col" { "Denied" } th scope="col" { "p50 (ms)" } th scope="col" { "p95 (ms)" } } }
                tbody { @for s in &all {
                    @let total = s.slots.iter().fold(Minute::default(), |mut a, m| { a.merge(m); a });
                    tr {
                        td { (s.server) } td { (total.calls) } td { (total.errors) } td { (total.denied) }
                        td { (total.percentile_us(50.0).map(|u| fmt(u as f64 / 1000.0)).unwrap_or_default()) }
                        td { (total.percentile_us(95.0).map(|u| fmt(u as f64 / 1000.0)).unwrap_or_default()) }
                    }
                } }
            } }
            @if !marks.is_empty() { p { "Deploys in the window: " @for (_, r) in &marks { code { (r) } " " } } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(server: &str, at: &str, calls: i64, errors: i64) -> Minute {
        let mut h = [0; reconciler::audit_minutes::BUCKETS];
        h[2] = calls;
        Minute {
            project: "p".into(),
            minute: at.into(),
            server: server.into(),
            calls,
            errors,
            denied: 0,
            total_us: calls * 3000,
            histogram: h,
        }
    }

    #[test]
    fn charts_plot_each_server_and_mark_deploys() {
        let end = DateTime::parse_from_rfc3339("2026-12-04T02:00:00Z").unwrap().with_timezone(&Utc);
        let w = Window { end, minutes: 60 };
        let m = [
            minute("time", "2026-12-04T01:10", 30, 3),
            minute("<b>x</b>", "2026-12-04T01:20", 5, 0),
            minute("old", "2026-12-03T01:00", 9, 0),
        ];
        let html = charts(&m, &[("2026-12-04T01:30:00.000Z".into(), "abcdef0123456789".into())], &w).into_string();
        assert!(html.contains("<svg") && html.contains("Calls per minute") && html.contains("time: peak 30 calls/min"), "{html}");
        assert!(html.contains("deploy abcdef012345"), "the deploy is marked");
        assert!(!html.contains("old"), "outside the window");
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;") && !html.contains("<b>x"), "server names are escaped");
        assert!(html.contains("time: peak 10 %"), "3 of 30 failed: {html}");
        assert_eq!(w.slot("2026-12-04T01:00"), Some(0));
        assert_eq!(w.slot("2026-12-04T01:59"), Some(59));
        assert_eq!(w.slot("2026-12-04T02:00"), None);
        assert!(charts(&[], &[], &w).into_string().contains("No calls"));
        // Six hours in ten-minute buckets, a day and a week in hours (what the store groups by).
        let six = Window { end, minutes: 360 };
        assert_eq!((six.slots(), six.prefix()), (36, 15));
        assert_eq!(six.slot("2026-12-03T20:0"), Some(0));
        assert_eq!(six.slot("2026-12-04T01:5"), Some(35));
        assert_eq!(six.slot("2026-12-03T19:5"), None, "before the window");
        let day = Window { end, minutes: 1440 };
        assert_eq!((day.slots(), day.prefix()), (24, 13));
        let week = Window { end, minutes: 10080 };
        assert_eq!((week.slots(), week.prefix()), (168, 13));
        assert_eq!(week.slot("2026-12-04T01"), Some(167));
    }
}
