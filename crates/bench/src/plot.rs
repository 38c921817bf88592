//! Plots drawn with plotters as SVG, each also rendered to PNG beside it with resvg (text in
//! the system's fonts; without any, the PNG has no lettering but the SVG is complete).

use crate::report::{PositionCurve, Row, SCALING_SIZES};
use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A white SVG canvas of `size` pixels.
fn canvas(svg: &Path, size: (u32, u32)) -> Result<Area<'_>> {
    let root = SVGBackend::new(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    Ok(root)
}

/// A series' color.
fn color(n: usize) -> RGBAColor {
    Palette99::pick(n).to_rgba()
}

/// Draw the legend and write the file.
fn finish<'a, X, Y>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    root: &Area<'a>,
) -> Result<()>
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Render `svg` to a PNG file of the same name beside it.
pub fn to_png(svg: &Path) -> Result<()> {
    let data = std::fs::read(svg).with_context(|| format!("reading {}", svg.display()))?;
    let mut options = resvg::usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // plotters asks for "sans-serif": map it to a sans face the system has.
    let sans = fonts
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .min_by_key(|name| (!name.contains("Sans"), name.len()));
    if let Some(family) = sans {
        fonts.set_sans_serif_family(family);
    }
    let tree = resvg::usvg::Tree::from_data(&data, &options)
        .with_context(|| format!("parsing {}", svg.display()))?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        resvg::tiny_skia::Pixmap::new(size.width(), size.height()).context("an empty plot")?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    let png = svg.with_extension("png");
    pixmap
        .save_png(&png)
        .with_context(|| format!("writing {}", png.display()))
}

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
    let root = canvas(svg, (800, 480))?;
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
        let c = color(n);
        chart
            .draw_series(LineSeries::new(
                rows.iter().map(|r| (r[0], r[i])),
                c.stroke_width(2),
            ))?
            .label(header[i])
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        chart.draw_series(
            rows.iter()
                .map(|r| Circle::new((r[0], r[i]), 3, c.filled())),
        )?;
    }
    finish(chart, &root)
}

/// Rate against compression speed for every compressor and data set (log speed axis).
pub fn rate_vs_speed(rows: &[&Row], svg: &Path) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let speeds = rows.iter().map(|r| r.compress_bps.max(1.0));
    let (lo, hi) = speeds.fold((f64::MAX, 0.0f64), |(lo, hi), s| (lo.min(s), hi.max(s)));
    let max_rate = rows.iter().map(|r| 100.0 * r.rate).fold(10.0, f64::max);
    let root = canvas(svg, (900, 560))?;
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
        let c = color(n);
        let points: Vec<&Row> = rows
            .iter()
            .copied()
            .filter(|r| r.modality == *modality)
            .collect();
        chart
            .draw_series(
                points
                    .iter()
                    .map(|r| Circle::new((r.compress_bps.max(1.0), 100.0 * r.rate), 4, c.filled())),
            )?
            .label(*modality)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
        chart.draw_series(points.iter().map(|r| {
            Text::new(
                r.compressor.clone(),
                (r.compress_bps.max(1.0) * 1.1, 100.0 * r.rate),
                ("sans-serif", 11).into_font(),
            )
        }))?;
    }
    finish(chart, &root)
}

/// Bits per byte by position within the chunk, one line per compressor (the paper's Fig. 4).
pub fn rate_by_position(curves: &[&PositionCurve], svg: &Path) -> Result<()> {
    let Some(first) = curves.first() else {
        return Ok(());
    };
    let bucket = crate::report::POSITION_BUCKET as f64;
    let len = curves
        .iter()
        .map(|c| c.bits_per_byte.len())
        .max()
        .unwrap_or(1) as f64
        * bucket;
    let max_bits = curves
        .iter()
        .flat_map(|c| c.bits_per_byte.iter().copied())
        .fold(1.0, f64::max);
    let root = canvas(svg, (800, 480))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: bits per byte by position in the chunk", first.modality),
            ("sans-serif", 20),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..len, 0.0..max_bits * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("position in the chunk (bytes)")
        .y_desc("bits per byte")
        .draw()?;
    for (n, curve) in curves.iter().enumerate() {
        let c = color(n);
        chart
            .draw_series(LineSeries::new(
                curve
                    .bits_per_byte
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| ((i as f64 + 0.5) * bucket, b)),
                c.stroke_width(2),
            ))?
            .label(curve.compressor.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
    }
    finish(chart, &root)
}

/// Adjusted rate against parameters for data sets of [`SCALING_SIZES`] bytes: each model's
/// measured raw rate plus 2 bytes per parameter over the data size (the paper's Fig. 2).
pub fn adjusted_vs_size(set: &str, models: &[(String, usize, f64)], svg: &Path) -> Result<()> {
    if models.is_empty() {
        return Ok(());
    }
    let adjusted =
        |params: usize, rate: f64, size: f64| 100.0 * (rate + 2.0 * params as f64 / size);
    let (lo, hi) = models.iter().fold((f64::MAX, 0.0f64), |(lo, hi), m| {
        (lo.min(m.1 as f64), hi.max(m.1 as f64))
    });
    let top = models
        .iter()
        .map(|m| adjusted(m.1, m.2, SCALING_SIZES[0]))
        .fold(100.0, f64::max)
        .min(400.0);
    let root = canvas(svg, (800, 480))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{set}: adjusted rate against model size"),
            ("sans-serif", 20),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), 0.0..top * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("parameters (log)")
        .y_desc("adjusted rate %")
        .draw()?;
    for (n, &size) in SCALING_SIZES.iter().enumerate() {
        let c = color(n);
        let points: Vec<(f64, f64)> = models
            .iter()
            .map(|m| (m.1 as f64, adjusted(m.1, m.2, size).min(top * 1.05)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
            .label(format!("{size:.0e} bytes"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
    }
    chart.draw_series(models.iter().map(|m| {
        Text::new(
            m.0.trim_start_matches("lmzip ").to_string(),
            (m.1 as f64 * 1.05, 100.0 * m.2),
            ("sans-serif", 11).into_font(),
        )
    }))?;
    finish(chart, &root)
}
