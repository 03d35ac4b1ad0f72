//! Renders the ink into 28x28 at any scale and sub-pixel offset in one step.
//!
//! Each output pixel is the average, over its footprint in the source, of the source
//! interpolated linearly between pixel centres. That average does not depend on how finely the
//! source was sampled, so a digit sent at 28, 280 or 4000 pixels comes out the same, and a
//! centre of mass between two pixels is placed exactly rather than rounded to one of them.

use super::Gray;
use crate::data::{PIXELS, SIDE};

/// Samples per source pixel (or per output pixel, when it covers less than one source pixel)
/// when averaging the interpolated source over an output pixel.
const SAMPLES: f32 = 8.0;

/// One axis of the mapping: source `centre` lands on output coordinate `target`, and one
/// source pixel spans `scale` output pixels. Only the source within `keep` is drawn.
#[derive(Debug, Clone, Copy)]
pub(super) struct Axis {
    pub centre: f32,
    pub target: f32,
    pub scale: f32,
    pub keep: (f32, f32),
}

/// Draws `gray` into 28x28 `u8` pixels along the two axes.
pub(super) fn render(gray: &Gray, x: Axis, y: Axis) -> [u8; PIXELS] {
    let w = gray.width() as usize;
    let (columns, rows) = (taps(w, x), taps(gray.height() as usize, y));
    // Every source row an output row averages, narrowed once to the 28 output columns.
    let (lo, hi) = (
        rows.iter().map(|r| r.first).min().unwrap_or(0),
        rows.iter().map(|r| r.first + r.weights.len()).max().unwrap_or(0),
    );
    let narrowed: Vec<[f32; SIDE]> = gray
        .as_raw()
        .chunks_exact(w)
        .skip(lo)
        .take(hi - lo)
        .map(|line| std::array::from_fn(|ox| columns[ox].apply(line)))
        .collect();
    let mut out = [0u8; PIXELS];
    for (oy, row) in rows.iter().enumerate() {
        let mut blended = [0.0f32; SIDE];
        for (line, weight) in narrowed[row.first - lo..].iter().zip(&row.weights) {
            blended.iter_mut().zip(line).for_each(|(b, v)| *b += weight * v);
        }
        for (ox, v) in blended.into_iter().enumerate() {
            out[oy * SIDE + ox] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    out
}

/// The source pixels one output pixel averages along one axis, and their weights.
#[derive(Debug)]
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

impl Taps {
    fn apply(&self, line: &[f32]) -> f32 {
        self.weights.iter().zip(&line[self.first..]).map(|(w, v)| w * v).sum()
    }
}

/// The taps of the 28 output pixels along an axis of `len` source pixels.
fn taps(len: usize, axis: Axis) -> Vec<Taps> {
    let footprint = 1.0 / axis.scale;
    let n = (SAMPLES * footprint.max(1.0)).ceil() as usize;
    let step = footprint / n as f32;
    (0..SIDE)
        .map(|o| {
            let start = axis.centre + (o as f32 - axis.target) * footprint;
            let first = ((start - 0.5).floor().max(0.0) as usize).min(len - 1);
            let last = ((start + footprint + 0.5).ceil().max(0.0) as usize).min(len - 1);
            let mut weights = vec![0.0f32; last - first + 1];
            for k in 0..n {
                let u = start + (k as f32 + 0.5) * step;
                if u < axis.keep.0 || u > axis.keep.1 {
                    continue;
                }
                // Linear interpolation between the centres on either side of `u`.
                let pos = u - 0.5;
                let below = pos.floor();
                let frac = pos - below;
                for (i, share) in [(below as isize, 1.0 - frac), (below as isize + 1, frac)] {
                    if (first as isize..=last as isize).contains(&i) {
                        weights[i as usize - first] += share / n as f32;
                    }
                }
            }
            Taps { first, weights }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(centre: f32, scale: f32) -> Axis {
        Axis { centre, target: 14.0, scale, keep: (f32::MIN, f32::MAX) }
    }

    #[test]
    fn at_scale_one_on_pixel_boundaries_a_pixel_keeps_most_of_its_value() {
        // Averaging the interpolation over a pixel gives 1/8, 3/4, 1/8 of it and its neighbours.
        let gray = Gray::from_fn(28, 28, |x, y| image::Luma([if x == 14 && y == 14 { 1.0 } else { 0.0 }]));
        let out = render(&gray, axis(14.0, 1.0), axis(14.0, 1.0));
        let at = |x: usize, y: usize| out[y * SIDE + x];
        assert_eq!(at(14, 14), (0.75f32 * 0.75 * 255.0).round() as u8);
        assert_eq!(at(15, 14), (0.125f32 * 0.75 * 255.0).round() as u8);
        assert_eq!(at(16, 14), 0);
    }

    #[test]
    fn the_weights_of_an_output_pixel_inside_the_source_sum_to_one() {
        for scale in [0.01, 0.3, 1.0, 2.5] {
            for t in taps(10_000, axis(5_000.3, scale)) {
                let sum: f32 = t.weights.iter().sum();
                assert!((sum - 1.0).abs() < 1e-4, "scale {scale}: {sum}");
            }
        }
    }
}
