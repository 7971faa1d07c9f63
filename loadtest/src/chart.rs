//! An SVG chart of a run: throughput (and the target rate) over time above, p50 and p99
//! latency below.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::Report;

type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// One panel: lines over seconds, with a legend.
fn panel(area: &DrawingArea<SVGBackend, Shift>, caption: &str, t_max: f64, series: &[Series]) -> Result<(), Box<dyn std::error::Error>> {
    let y_max = series.iter().flat_map(|(_, _, pts)| pts.iter().map(|p| p.1)).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    for (label, color, points) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
    }
    chart.configure_series_labels().border_style(BLACK).draw()?;
    Ok(())
}

/// Writes the chart of `report.timeline` to `path`.
///
/// Errors: the file cannot be written, or the run has no timeline.
pub fn write_svg(report: &Report, path: &std::path::Path) -> anyhow::Result<()> {
    let ticks = &report.timeline;
    anyhow::ensure!(!ticks.is_empty(), "the run has no timeline to chart");
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (top, bottom) = root.split_vertically(320);
    let t_max = ticks.last().map(|t| t.t_s).unwrap_or(1) as f64;
    let line = |f: fn(&crate::report::Tick) -> f64| ticks.iter().map(|t| (t.t_s as f64, f(t))).collect::<Vec<_>>();
    let throughput = [
        ("received", BLUE, line(|t| t.received as f64)),
        ("target rate", BLACK, line(|t| t.target_rate)),
    ];
    let latency = [("p50", GREEN, line(|t| t.p50_ms)), ("p99", RED, line(|t| t.p99_ms))];
    panel(
        &top,
        &format!("{} ({}): messages per second", report.scenario, report.mode),
        t_max,
        &throughput,
    )
    .and_then(|()| panel(&bottom, "latency (ms)", t_max, &latency))
    .map_err(|e| anyhow::anyhow!("drawing the chart: {e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
