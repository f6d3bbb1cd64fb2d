//! The duration and lag of a job's last runs as an inline SVG, drawn on the
//! server (no chart library, no script).

use maud::{html, Markup};
use punctual_api::service::jobs::ExecutionSummary;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 24.0;

/// A line chart of `duration_ms` and `lag_ms`, oldest run on the left. Runs
/// without a figure (pending, skipped) leave a gap in their line.
pub(crate) fn durations(executions: &[ExecutionSummary]) -> Markup {
    let runs: Vec<&ExecutionSummary> = executions
        .iter()
        .rev()
        .filter(|e| e.duration_ms.is_some() || e.lag_ms.is_some())
        .collect();
    if runs.is_empty() {
        return html! { p.muted { "No finished runs to chart yet." } };
    }
    let max = runs
        .iter()
        .flat_map(|e| [e.duration_ms, e.lag_ms])
        .flatten()
        .max()
        .unwrap_or(0)
        .max(1);
    let ceiling = nice_ceiling(max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let step = if runs.len() > 1 {
        plot_w / (runs.len() - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| LEFT + step * i as f64 + if runs.len() == 1 { plot_w / 2.0 } else { 0.0 };
    let y = |v: i64| TOP + plot_h - (v as f64 / ceiling as f64) * plot_h;
    let line = |value: fn(&ExecutionSummary) -> Option<i64>| {
        runs.iter()
            .enumerate()
            .filter_map(|(i, e)| value(e).map(|v| format!("{:.1},{:.1}", x(i), y(v))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let duration_points = line(|e| e.duration_ms);
    let lag_points = line(|e| e.lag_ms);
    let label = format!(
        "Duration and lag of the last {} runs; longest {} ms",
        runs.len(),
        max
    );
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
                title { (label) }
                @for fraction in [0.0_f64, 0.5, 1.0] {
                    @let gy = TOP + plot_h - fraction * plot_h;
                    line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(gy) y2=(gy) {}
                    text.axis x=(LEFT - 6.0) y=(gy + 4.0) text-anchor="end" {
                        (format_ms((ceiling as f64 * fraction) as i64))
                    }
                }
                polyline.duration points=(duration_points) {}
                polyline.lag points=(lag_points) {}
                @for (i, e) in runs.iter().enumerate() {
                    @if let Some(d) = e.duration_ms {
                        circle.duration cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(d))) r="2.5" {
                            title { (e.status) ", " (d) " ms" }
                        }
                    }
                }
                text.axis x=(LEFT) y=(HEIGHT - 6.0) { "oldest" }
                text.axis x=(WIDTH - RIGHT) y=(HEIGHT - 6.0) text-anchor="end" { "newest" }
            }
            figcaption {
                span.key.duration { "Duration" } " "
                span.key.lag { "Lag" }
                " (milliseconds, last " (runs.len()) " runs)"
            }
        }
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `max`.
fn nice_ceiling(max: i64) -> i64 {
    let mut base = 1_i64;
    loop {
        for factor in [1, 2, 5] {
            let candidate = base.saturating_mul(factor);
            if candidate >= max {
                return candidate;
            }
        }
        if base > i64::MAX / 10 {
            return max;
        }
        base *= 10;
    }
}

fn format_ms(ms: i64) -> String {
    if ms >= 10_000 {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(120), 200);
        assert_eq!(nice_ceiling(501), 1000);
    }
}
