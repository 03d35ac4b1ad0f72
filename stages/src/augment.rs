//! **augment**: seeded, parallel augmentation of the training feedback: each sample gets
//! `augment.copies` variants (rotation, shift, scale, shear, noise; stroke thickness for digit
//! tasks; flips and colour jitter where the task allows them). Every
//! copy draws from its own generator seeded by (seed, image sha256, copy number), so the same
//! inputs give the same outputs in any thread order. A tabular task gets no copies: the image
//! transforms mean nothing for a row of features, so its output is an empty manifest.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

use crate::StageError;
use crate::manifest::{self, Role, Row};
use gitops::params;
use gitops::task::Task;
use model::rng::SplitMix;
use pipeline::paths;

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Make seeded augmented copies of the training feedback",
    long_about = "Reads the clean manifest from validate; writes augmented.parquet with params augment.copies variants of every training feedback sample (rotation, shift, scale, shear, stroke thickness, noise), identical for identical inputs."
)]
pub struct Args {
    #[arg(long, default_value = "params.yaml")]
    pub params: PathBuf,
    #[arg(long, default_value = paths::CLEAN)]
    pub manifest: PathBuf,
    #[arg(long, default_value = paths::AUGMENTED)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentParams {
    pub seed: u64,
    pub copies: usize,
    pub rotation_deg: f64,
    pub shift_px: f64,
    pub scale: f64,
    pub shear: f64,
    pub stroke_px: u32,
    pub noise: f64,
}

impl Default for AugmentParams {
    fn default() -> Self {
        Self {
            seed: 0,
            copies: 10,
            rotation_deg: 12.0,
            shift_px: 2.0,
            scale: 0.12,
            shear: 0.2,
            stroke_px: 1,
            noise: 0.05,
        }
    }
}

pub fn run(args: &Args) -> Result<Vec<Row>, StageError> {
    let p: AugmentParams = params::section(&args.params, "augment")?;
    let task = params::task(&args.params)?;
    let rows = manifest::read(&args.manifest)?;
    let (p, task) = (&p, &task);
    let tabular = task.schema().is_some();
    let sources: Vec<&Row> =
        rows.iter().filter(|r| !tabular && r.role == Role::FeedbackTrain && r.pixels.is_some()).collect();
    let out: Vec<Row> = sources
        .par_iter()
        .flat_map_iter(|row| {
            let input = row.pixels.as_deref().expect("filtered");
            (0..p.copies).map(move |copy| Row {
                source: "augment".into(),
                kind: "augmented".into(),
                pixels: Some(augment(task, input, p, &row.sha256, copy)),
                ..(*row).clone()
            })
        })
        .collect();
    manifest::write(&args.out, &out)?;
    Ok(out)
}

/// One augmented copy of an input of `task` (channel planes one after another). Digits get
/// stroke thickening or thinning and black beyond the edges; other inputs repeat their edges,
/// and get the flips and colour jitter the task allows. A tabular task's row is never
/// transformed: its copy is the row itself (and `run` writes none).
pub fn augment(task: &Task, input: &[u8], p: &AugmentParams, sha256: &str, copy: usize) -> Vec<u8> {
    if task.schema().is_some() {
        return input.to_vec();
    }
    let mut rng = copy_rng(p.seed, sha256, copy);
    let (w, h) = (task.input.width as usize, task.input.height as usize);
    let angle = rng.symmetric(p.rotation_deg).to_radians();
    let scale = 1.0 + rng.symmetric(p.scale);
    let shear = rng.symmetric(p.shear);
    // Shifts are given in pixels of a 28-pixel input.
    let shift = p.shift_px * w.min(h) as f64 / 28.0;
    let (tx, ty) = (rng.symmetric(shift), rng.symmetric(shift));
    let digit = task.is_digit();
    let stroke = if p.stroke_px == 0 || !digit {
        0
    } else {
        (rng.next_u64() % (2 * p.stroke_px as u64 + 1)) as i64 - p.stroke_px as i64
    };
    let flip_x = task.augment.flip_horizontal && rng.next_u64() % 2 == 1;
    let flip_y = task.augment.flip_vertical && rng.next_u64() % 2 == 1;
    // Draws only for what the task allows, so other tasks' copies stay as they were.
    let jitter = f64::from(task.augment.colour_jitter);
    let (brightness, contrast, gains) = if jitter > 0.0 {
        let (brightness, contrast) = (rng.symmetric(jitter), 1.0 + rng.symmetric(jitter));
        (brightness, contrast, (0..task.input.channels).map(|_| 1.0 + rng.symmetric(jitter)).collect())
    } else {
        (0.0, 1.0, Vec::new())
    };
    let plane_len = w * h;
    let mut out = Vec::with_capacity(input.len());
    for (c, plane) in input.chunks(plane_len).enumerate() {
        let mut plane = affine(plane, (w, h), Transform { angle, scale, shear, tx, ty }, !digit);
        for _ in 0..stroke.unsigned_abs() {
            let thinner = morph(&plane, (w, h), stroke < 0);
            // Thinning must not erase the digit.
            if stroke < 0 && thinner.iter().filter(|&&v| v > 64).count() < 20 {
                break;
            }
            plane = thinner;
        }
        if flip_x || flip_y {
            plane = flip(&plane, (w, h), flip_x, flip_y);
        }
        if jitter > 0.0 {
            let gain = gains[c % gains.len()] * contrast;
            plane.iter_mut().for_each(|v| {
                *v = ((f64::from(*v) / 255.0 - 0.5) * gain * 255.0 + 127.5 + brightness * 255.0).clamp(0.0, 255.0) as u8
            });
        }
        out.extend(plane);
    }
    if p.noise > 0.0 {
        for v in out.iter_mut() {
            *v = (*v as f64 + rng.gaussian() * p.noise * 255.0).clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Rotation (radians), scale, shear and shift (pixels) about an image's centre.
#[derive(Debug, Clone, Copy)]
pub struct Transform {
    pub angle: f64,
    pub scale: f64,
    pub shear: f64,
    pub tx: f64,
    pub ty: f64,
}

/// Applies `t` to a `w`x`h` plane, mapping each output pixel back through the inverse
/// transform, bilinearly; beyond the edges is black, or with `replicate` the nearest edge.
pub fn affine(src: &[u8], (w, h): (usize, usize), t: Transform, replicate: bool) -> Vec<u8> {
    let (s, c) = t.angle.sin_cos();
    // Forward: rotate * shear * scale. Inverse of [[a, b], [d, e]].
    let (a, b, d, e) = (c * t.scale, (c * t.shear - s) * t.scale, s * t.scale, (s * t.shear + c) * t.scale);
    let det = a * e - b * d;
    let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f64 - cx - t.tx, y as f64 - cy - t.ty);
            let (sx, sy) = (ia * dx + ib * dy + cx, id * dx + ie * dy + cy);
            out[y * w + x] = bilinear(src, (w, h), sx, sy, replicate);
        }
    }
    out
}

fn bilinear(src: &[u8], (w, h): (usize, usize), x: f64, y: f64, replicate: bool) -> u8 {
    let at = |x: i64, y: i64| -> f64 {
        let inside = (0..w as i64).contains(&x) && (0..h as i64).contains(&y);
        if inside || replicate {
            let (x, y) = (x.clamp(0, w as i64 - 1), y.clamp(0, h as i64 - 1));
            src[y as usize * w + x as usize] as f64
        } else {
            0.0
        }
    };
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
    let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
    (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
}

/// A 3x3 grey-level dilation (thicker strokes) or, with `erode`, erosion (thinner strokes).
pub fn morph(src: &[u8], (w, h): (usize, usize), erode: bool) -> Vec<u8> {
    let mut out = vec![0u8; w * h];
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            let around = (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (x + dx, y + dy))).map(|(nx, ny)| {
                if (0..w as i64).contains(&nx) && (0..h as i64).contains(&ny) {
                    src[ny as usize * w + nx as usize]
                } else {
                    0
                }
            });
            out[y as usize * w + x as usize] =
                if erode { around.min().unwrap_or(0) } else { around.max().unwrap_or(0) };
        }
    }
    out
}

/// Mirrors a plane left-right and/or top-bottom.
fn flip(src: &[u8], (w, h): (usize, usize), flip_x: bool, flip_y: bool) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| {
            let sx = if flip_x { w - 1 - x } else { x };
            let sy = if flip_y { h - 1 - y } else { y };
            src[sy * w + sx]
        })
        .collect()
}

/// One generator per augmented copy, seeded by (seed, image sha256, copy number).
fn copy_rng(seed: u64, sha256: &str, copy: usize) -> SplitMix {
    let digest =
        Sha256::new().chain_update(seed.to_le_bytes()).chain_update(sha256).chain_update(copy.to_le_bytes()).finalize();
    SplitMix::new(u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")))
}
