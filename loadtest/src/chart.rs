//! An SVG chart of a run: throughput (and the target rate) over time above, p50 and p99
//! latency below.

use plotters::prelude::*;

use crate::report::Report;

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
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        let y_max = ticks.iter().map(|t| (t.received as f64).max(t.target_rate)).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&top)
            .caption(
                format!("{} ({}): messages per second", report.scenario, report.mode),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
        chart.configure_mesh().x_desc("seconds").draw()?;
        chart
            .draw_series(LineSeries::new(ticks.iter().map(|t| (t.t_s as f64, t.received as f64)), &BLUE))?
            .label("received")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
        chart
            .draw_series(LineSeries::new(ticks.iter().map(|t| (t.t_s as f64, t.target_rate)), &BLACK))?
            .label("target rate")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLACK));
        chart.configure_series_labels().border_style(BLACK).draw()?;

        let l_max = ticks.iter().map(|t| t.p99_ms).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&bottom)
            .caption("latency (ms)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..t_max, 0.0..l_max)?;
        chart.configure_mesh().x_desc("seconds").draw()?;
        chart
            .draw_series(LineSeries::new(ticks.iter().map(|t| (t.t_s as f64, t.p50_ms)), &GREEN))?
            .label("p50")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], GREEN));
        chart
            .draw_series(LineSeries::new(ticks.iter().map(|t| (t.t_s as f64, t.p99_ms)), &RED))?
            .label("p99")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
        chart.configure_series_labels().border_style(BLACK).draw()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("drawing the chart: {e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
