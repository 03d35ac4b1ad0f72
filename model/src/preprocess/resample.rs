//! Resamples an image to the network's size at any scale and sub-pixel offset in one step.
//!
//! Each output pixel is the average, over its footprint in the source, of the source
//! interpolated linearly between pixel centres. That average does not depend on how finely the
//! source was sampled, so a digit sent at 28, 280 or 4000 pixels comes out the same, and a
//! centre of mass between two pixels is placed exactly rather than rounded to one of them.

/// Samples per source pixel (or per output pixel, when it covers less than one source pixel)
/// when averaging the interpolated source over an output pixel.
const SAMPLES: f32 = 8.0;

/// One axis of the mapping: source `centre` lands on output coordinate `target`, and one
/// source pixel spans `scale` output pixels. Only the source within `keep` is drawn; beyond
/// the source's edges lies zero, or with `replicate` the edge pixel's value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Axis {
    pub centre: f32,
    pub target: f32,
    pub scale: f32,
    pub keep: (f32, f32),
    pub replicate: bool,
}

/// A mapping from a `w`x`h` source to a `out_w`x`out_h` output, applied to any number of planes.
#[derive(Debug)]
pub(super) struct Resampler {
    w: usize,
    columns: Vec<Taps>,
    rows: Vec<Taps>,
}

impl Resampler {
    pub fn new((w, h): (usize, usize), (out_w, out_h): (usize, usize), x: Axis, y: Axis) -> Self {
        Self { w, columns: taps(w, out_w, x), rows: taps(h, out_h, y) }
    }

    /// Draws one plane (`w * h` values, row by row) into the output, unclamped.
    pub fn apply(&self, plane: &[f32]) -> Vec<f32> {
        let out_w = self.columns.len();
        // Every source row an output row averages, narrowed once to the output columns.
        let (lo, hi) = (
            self.rows.iter().map(|r| r.first).min().unwrap_or(0),
            self.rows.iter().map(|r| r.first + r.weights.len()).max().unwrap_or(0),
        );
        let mut narrowed = vec![0.0f32; (hi - lo) * out_w];
        for (line, out) in plane.chunks_exact(self.w).skip(lo).take(hi - lo).zip(narrowed.chunks_exact_mut(out_w)) {
            out.iter_mut().zip(&self.columns).for_each(|(o, c)| *o = c.apply(line));
        }
        let mut out = vec![0.0f32; self.rows.len() * out_w];
        for (row, blended) in self.rows.iter().zip(out.chunks_exact_mut(out_w)) {
            for (line, weight) in narrowed[(row.first - lo) * out_w..].chunks_exact(out_w).zip(&row.weights) {
                blended.iter_mut().zip(line).for_each(|(b, v)| *b += weight * v);
            }
        }
        out
    }
}

/// Values in [0, 1] to `u8` levels.
pub(super) fn quantize(values: &[f32]) -> Vec<u8> {
    values.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect()
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

/// The taps of `out` output pixels along an axis of `len` source pixels.
fn taps(len: usize, out: usize, axis: Axis) -> Vec<Taps> {
    let footprint = 1.0 / axis.scale;
    let n = (SAMPLES * footprint.max(1.0)).ceil() as usize;
    let step = footprint / n as f32;
    (0..out)
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
                    let i = if axis.replicate { i.clamp(first as isize, last as isize) } else { i };
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
        Axis { centre, target: 14.0, scale, keep: (f32::MIN, f32::MAX), replicate: false }
    }

    #[test]
    fn at_scale_one_on_pixel_boundaries_a_pixel_keeps_most_of_its_value() {
        // Averaging the interpolation over a pixel gives 1/8, 3/4, 1/8 of it and its neighbours.
        let plane: Vec<f32> = (0..28 * 28).map(|i| if i == 14 * 28 + 14 { 1.0 } else { 0.0 }).collect();
        let out = quantize(&Resampler::new((28, 28), (28, 28), axis(14.0, 1.0), axis(14.0, 1.0)).apply(&plane));
        let at = |x: usize, y: usize| out[y * 28 + x];
        assert_eq!(at(14, 14), (0.75f32 * 0.75 * 255.0).round() as u8);
        assert_eq!(at(15, 14), (0.125f32 * 0.75 * 255.0).round() as u8);
        assert_eq!(at(16, 14), 0);
    }

    #[test]
    fn the_weights_of_an_output_pixel_inside_the_source_sum_to_one() {
        for scale in [0.01, 0.3, 1.0, 2.5] {
            for t in taps(10_000, 28, axis(5_000.3, scale)) {
                let sum: f32 = t.weights.iter().sum();
                assert!((sum - 1.0).abs() < 1e-4, "scale {scale}: {sum}");
            }
        }
    }

    #[test]
    fn replicated_edges_keep_a_flat_image_flat_up_to_its_border() {
        let axis = Axis { centre: 5.0, target: 20.0, scale: 4.0, keep: (f32::MIN, f32::MAX), replicate: true };
        let out = Resampler::new((10, 10), (40, 40), axis, axis).apply(&[0.5; 100]);
        assert!(out.iter().all(|v| (v - 0.5).abs() < 1e-5), "{out:?}");
    }
}
