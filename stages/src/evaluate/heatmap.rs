//! Confusion-matrix heat maps as PNG, drawn with plotters. Labels use the first system font
//! found (DejaVu or Liberation); without one the map is drawn without text.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::OnceLock;

use crate::StageError;

const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn font_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        FONTS.iter().find_map(|p| std::fs::read(p).ok()).is_some_and(|bytes| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice())).is_ok()
        })
    })
}

/// Draws `confusion[true][predicted]` as a heat map with counts in the cells, its axes labelled
/// with the class names.
pub fn draw(path: &Path, confusion: &[Vec<u64>], classes: &[String], title: &str) -> Result<(), StageError> {
    let n = confusion.len();
    let last = n as f64 - 1.0;
    let name = |v: f64| classes.get(v.round().max(0.0) as usize).cloned().unwrap_or_default();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(crate::io_err(dir))?;
    }
    let plot_err = |e: &dyn std::fmt::Display| StageError::Plot(format!("{}: {e}", path.display()));
    let text = font_available();
    let root = BitMapBackend::new(path, (560, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(16);
    if text {
        builder.caption(title, ("sans-serif", 18)).x_label_area_size(36).y_label_area_size(36);
    }
    let mut chart = builder.build_cartesian_2d(-0.5f64..last + 0.5, -0.5f64..last + 0.5).map_err(|e| plot_err(&e))?;
    if text {
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("true")
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&|v| name(*v))
            .y_label_formatter(&|v| name(last - v))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| plot_err(&e))?;
    }
    let row_max: Vec<u64> = confusion.iter().map(|r| r.iter().copied().max().unwrap_or(0).max(1)).collect();
    chart
        .draw_series((0..n).flat_map(|t| (0..n).map(move |p| (t, p))).map(|(t, p)| {
            let share = confusion[t][p] as f64 / row_max[t] as f64;
            let shade = (255.0 * (1.0 - share)) as u8;
            let colour = if t == p {
                RGBColor(shade, shade.saturating_add(40).max(120), shade)
            } else {
                RGBColor(255, shade, shade)
            };
            // Row `t` is drawn from the top so the diagonal runs top-left to bottom-right.
            let (x, y) = (p as f64, last - t as f64);
            Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], colour.filled())
        }))
        .map_err(|e| plot_err(&e))?;
    if text {
        chart
            .draw_series((0..n).flat_map(|t| (0..n).map(move |p| (t, p))).filter(|&(t, p)| confusion[t][p] > 0).map(
                |(t, p)| {
                    let style = ("sans-serif", if n > 15 { 9 } else { 13 })
                        .into_font()
                        .color(if t == p { &WHITE } else { &BLACK })
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    Text::new(confusion[t][p].to_string(), (p as f64, last - t as f64), style)
                },
            ))
            .map_err(|e| plot_err(&e))?;
    }
    root.present().map_err(|e| plot_err(&e))
}
