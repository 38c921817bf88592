//! Plots drawn with plotters (SVG).

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::Path;

/// Draw the training curve of `train.csv` (bits per byte by step: training loss and every
/// held-out column) into an SVG.
pub fn loss_curve(csv: &Path, svg: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| {
            l.split(',')
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .filter(|r: &Vec<f64>| r.len() == header.len())
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let series: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.ends_with("bpb"))
        .map(|(i, _)| i)
        .collect();
    let max_step = rows.iter().map(|r| r[0]).fold(1.0, f64::max);
    let max_bpb = rows
        .iter()
        .flat_map(|r| series.iter().map(move |&i| r[i]))
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let root = SVGBackend::new(svg, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("lmzip train: bits per byte", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..max_step, 0.0..max_bpb * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("bits per byte")
        .draw()?;
    for (n, &i) in series.iter().enumerate() {
        let color = Palette99::pick(n).to_rgba();
        chart
            .draw_series(LineSeries::new(
                rows.iter().map(|r| (r[0], r[i])),
                color.stroke_width(2),
            ))?
            .label(header[i])
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(
            rows.iter()
                .map(|r| Circle::new((r[0], r[i]), 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Rate against compression speed for every compressor and data set (log speed axis).
pub fn rate_vs_speed(rows: &[crate::bench::Row], svg: &Path) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let speeds = rows.iter().map(|r| r.compress_bps.max(1.0));
    let (lo, hi) = speeds.fold((f64::MAX, 0.0f64), |(lo, hi), s| (lo.min(s), hi.max(s)));
    let max_rate = rows.iter().map(|r| 100.0 * r.rate).fold(10.0, f64::max);
    let root = SVGBackend::new(svg, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("rate against compression speed", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), 0.0..max_rate * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("compression speed, bytes/s (log)")
        .y_desc("rate % (header counted once)")
        .draw()?;
    let mut modalities: Vec<&str> = rows.iter().map(|r| r.modality.as_str()).collect();
    modalities.dedup();
    for (n, modality) in modalities.iter().enumerate() {
        let color = Palette99::pick(n).to_rgba();
        let points: Vec<&crate::bench::Row> =
            rows.iter().filter(|r| r.modality == *modality).collect();
        chart
            .draw_series(points.iter().map(|r| {
                Circle::new((r.compress_bps.max(1.0), 100.0 * r.rate), 4, color.filled())
            }))?
            .label(*modality)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        chart.draw_series(points.iter().map(|r| {
            Text::new(
                r.compressor.clone(),
                (r.compress_bps.max(1.0) * 1.1, 100.0 * r.rate),
                ("sans-serif", 11).into_font(),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
