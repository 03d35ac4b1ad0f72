//! **augment**: seeded, parallel augmentation of the training feedback: each sample gets
//! `augment.copies` variants (rotation, shift, scale, shear, stroke thickness, noise). Every
//! copy draws from its own generator seeded by (seed, image sha256, copy number), so the same
//! inputs give the same outputs in any thread order.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

use super::StageError;
use super::manifest::{self, Role, Row};
use crate::data::{PIXELS, SIDE};
use crate::params;
use crate::rng::SplitMix;

#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Make seeded augmented copies of the training feedback",
    long_about = "Reads the clean manifest from validate; writes augmented.parquet with params augment.copies variants of every training feedback sample (rotation, shift, scale, shear, stroke thickness, noise), identical for identical inputs."
)]
pub struct Args {
    #[arg(long, default_value = "params.yaml")]
    pub params: PathBuf,
    #[arg(long, default_value = "artifacts/validate/clean.parquet")]
    pub manifest: PathBuf,
    #[arg(long, default_value = "artifacts/augment/augmented.parquet")]
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
    let rows = manifest::read(&args.manifest)?;
    let p = &p;
    let sources: Vec<&Row> = rows.iter().filter(|r| r.role == Role::FeedbackTrain && r.pixels.is_some()).collect();
    let out: Vec<Row> = sources
        .par_iter()
        .flat_map_iter(|row| {
            let pixels: [u8; PIXELS] = row.pixels.as_deref().expect("filtered").try_into().expect("28x28");
            (0..p.copies).map(move |copy| Row {
                source: "augment".into(),
                kind: "augmented".into(),
                pixels: Some(augment(&pixels, p, &row.sha256, copy).to_vec()),
                ..(*row).clone()
            })
        })
        .collect();
    manifest::write(&args.out, &out)?;
    Ok(out)
}

/// One augmented copy of a 28x28 digit.
pub fn augment(pixels: &[u8; PIXELS], p: &AugmentParams, sha256: &str, copy: usize) -> [u8; PIXELS] {
    let mut rng = copy_rng(p.seed, sha256, copy);
    let angle = rng.symmetric(p.rotation_deg).to_radians();
    let scale = 1.0 + rng.symmetric(p.scale);
    let shear = rng.symmetric(p.shear);
    let (tx, ty) = (rng.symmetric(p.shift_px), rng.symmetric(p.shift_px));
    let stroke =
        if p.stroke_px == 0 { 0 } else { (rng.next_u64() % (2 * p.stroke_px as u64 + 1)) as i64 - p.stroke_px as i64 };
    let mut out = affine(pixels, angle, scale, shear, tx, ty);
    for _ in 0..stroke.unsigned_abs() {
        let thinner = morph(&out, stroke < 0);
        // Thinning must not erase the digit.
        if stroke < 0 && thinner.iter().filter(|&&v| v > 64).count() < 20 {
            break;
        }
        out = thinner;
    }
    if p.noise > 0.0 {
        for v in out.iter_mut() {
            *v = (*v as f64 + rng.gaussian() * p.noise * 255.0).clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Rotates (radians), scales, shears and shifts a digit about its centre, mapping each output
/// pixel back through the inverse transform, bilinearly.
pub fn affine(src: &[u8; PIXELS], angle: f64, scale: f64, shear: f64, tx: f64, ty: f64) -> [u8; PIXELS] {
    let (s, c) = angle.sin_cos();
    // Forward: rotate * shear * scale. Inverse of [[a, b], [d, e]].
    let (a, b, d, e) = (c * scale, (c * shear - s) * scale, s * scale, (s * shear + c) * scale);
    let det = a * e - b * d;
    let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
    let centre = SIDE as f64 / 2.0;
    let mut out = [0u8; PIXELS];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (dx, dy) = (x as f64 - centre - tx, y as f64 - centre - ty);
            let (sx, sy) = (ia * dx + ib * dy + centre, id * dx + ie * dy + centre);
            out[y * SIDE + x] = bilinear(src, sx, sy);
        }
    }
    out
}

fn bilinear(src: &[u8; PIXELS], x: f64, y: f64) -> u8 {
    let at = |x: i64, y: i64| -> f64 {
        if (0..SIDE as i64).contains(&x) && (0..SIDE as i64).contains(&y) {
            src[y as usize * SIDE + x as usize] as f64
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
pub fn morph(src: &[u8; PIXELS], erode: bool) -> [u8; PIXELS] {
    let mut out = [0u8; PIXELS];
    for y in 0..SIDE as i64 {
        for x in 0..SIDE as i64 {
            let around = (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (x + dx, y + dy))).map(|(nx, ny)| {
                if (0..SIDE as i64).contains(&nx) && (0..SIDE as i64).contains(&ny) {
                    src[ny as usize * SIDE + nx as usize]
                } else {
                    0
                }
            });
            out[y as usize * SIDE + x as usize] =
                if erode { around.min().unwrap_or(0) } else { around.max().unwrap_or(0) };
        }
    }
    out
}

/// One generator per augmented copy, seeded by (seed, image sha256, copy number).
fn copy_rng(seed: u64, sha256: &str, copy: usize) -> SplitMix {
    let digest =
        Sha256::new().chain_update(seed.to_le_bytes()).chain_update(sha256).chain_update(copy.to_le_bytes()).finalize();
    SplitMix::new(u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")))
}
