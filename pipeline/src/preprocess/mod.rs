//! The one preprocessing function shared by training and serving, so a digit drawn on a canvas,
//! photographed on paper or read from MNIST reaches the model in the same form. It follows
//! MNIST's own recipe: grayscale, light ink on dark, crop to the ink, fit in 20x20 keeping the
//! aspect ratio, then place in 28x28 with the centre of mass in the middle. The box and the
//! centre are measured to a fraction of a pixel (`ink.rs`) and the digit is drawn in one
//! resampling step (`resample.rs`), so its size and position in the input do not change what
//! the model sees.

mod ink;
mod resample;

use image::{DynamicImage, ImageBuffer, Luma};
use ink::Ink;
use resample::Axis;

use crate::data::{PIXELS, SIDE};

/// Mean and standard deviation of MNIST's training pixels in [0, 1].
pub const MEAN: f32 = 0.1307;
pub const STD: f32 = 0.3081;

/// The side the ink's box is scaled to. MNIST fits its digits in 20x20 whole pixels; measured
/// between the points where the ink fades out (`ink.rs`), the same digits span 20.75.
const FIT: f32 = 20.75;
/// Where the centre of mass goes: the middle of pixel (14, 14), where MNIST puts it.
const CENTRE: f32 = 14.5;
/// Below this contrast (0-255) between background and ink the image is treated as blank.
const MIN_CONTRAST: f32 = 24.0 / 255.0;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PreprocessError {
    #[error("the image is blank: no ink stands out from the background (contrast {:.0} of 255)", contrast * 255.0)]
    Blank { contrast: f32 },
}

/// Ink intensity in [0, 1], one value per pixel.
type Gray = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Turns any image into a 28x28 MNIST-style digit: `u8` pixels, white ink on black.
pub fn to_mnist(image: &DynamicImage) -> Result<[u8; PIXELS], PreprocessError> {
    let gray = ink_map(image)?;
    // Faint ink up to half an output pixel outside the box is drawn too, at any resolution.
    let ink = Ink::measure(&gray, 0.5 / FIT).ok_or(PreprocessError::Blank { contrast: 0.0 })?;
    let scale = FIT / ink.extent;
    let x = Axis { centre: ink.cx, target: CENTRE, scale, keep: ink.columns };
    let y = Axis { centre: ink.cy, target: CENTRE, scale, keep: ink.rows };
    Ok(resample::render(&gray, x, y))
}

/// `to_mnist` followed by the normalisation the model was trained with.
pub fn preprocess(image: &DynamicImage) -> Result<[f32; PIXELS], PreprocessError> {
    Ok(normalize(&to_mnist(image)?))
}

/// Scales `u8` pixels to [0, 1] and standardises them with MNIST's mean and deviation.
pub fn normalize(pixels: &[u8; PIXELS]) -> [f32; PIXELS] {
    pixels.map(|p| (p as f32 / 255.0 - MEAN) / STD)
}

/// Grayscale ink intensity, bright on a zero background, stretched so the ink peaks at 1.
fn ink_map(image: &DynamicImage) -> Result<Gray, PreprocessError> {
    let (w, h) = (image.width(), image.height());
    if w == 0 || h == 0 {
        return Err(PreprocessError::Blank { contrast: 0.0 });
    }
    let (mut gray, alpha) = luma_alpha(image);
    if let Some(alpha) = alpha {
        // Transparent pixels take the colour the ink is not, so strokes on a transparent
        // canvas survive.
        let (mut sum, mut weight) = (0.0f32, 0.0f32);
        for (l, a) in gray.iter().zip(&alpha) {
            sum += l * a;
            weight += a;
        }
        let backdrop = if weight > 0.0 && sum / weight < 0.5 { 1.0 } else { 0.0 };
        gray.iter_mut().zip(&alpha).for_each(|(l, a)| *l = *l * a + backdrop * (1.0 - a));
    }
    let mut background = border_median(&gray, w as usize, h as usize);
    if background > 0.5 {
        gray.iter_mut().for_each(|v| *v = 1.0 - *v);
        background = 1.0 - background;
    }
    let peak = gray.iter().fold(0.0f32, |m, &v| m.max(v));
    let contrast = peak - background;
    if contrast < MIN_CONTRAST {
        return Err(PreprocessError::Blank { contrast });
    }
    let stretch = 1.0 / contrast;
    gray.iter_mut().for_each(|v| *v = ((*v - background) * stretch).max(0.0));
    Ok(Gray::from_raw(w, h, gray).expect("one value per pixel"))
}

/// Luma in [0, 1] of every pixel, row by row, and alpha when the image has any. The common
/// 8-bit layouts are read directly; the others through `image`'s conversion.
fn luma_alpha(image: &DynamicImage) -> (Vec<f32>, Option<Vec<f32>>) {
    let unit = |v: u8| UNIT[v as usize];
    match image {
        DynamicImage::ImageLuma8(g) => (g.as_raw().iter().map(|&v| luma([unit(v); 3])).collect(), None),
        DynamicImage::ImageRgb8(c) => {
            (c.as_raw().chunks_exact(3).map(|p| luma([unit(p[0]), unit(p[1]), unit(p[2])])).collect(), None)
        }
        DynamicImage::ImageRgba8(c) => {
            let (luma, alpha) =
                c.as_raw().chunks_exact(4).map(|p| (luma([unit(p[0]), unit(p[1]), unit(p[2])]), unit(p[3]))).unzip();
            (luma, Some(alpha))
        }
        other => {
            let (luma, alpha) = other.to_rgba32f().pixels().map(|p| (luma([p.0[0], p.0[1], p.0[2]]), p.0[3])).unzip();
            (luma, Some(alpha))
        }
    }
}

/// `v / 255` for every byte value, so reading a pixel costs no division.
const UNIT: [f32; 256] = {
    let mut table = [0.0; 256];
    let mut v = 0;
    while v < 256 {
        table[v] = v as f32 / 255.0;
        v += 1;
    }
    table
};

fn luma([r, g, b]: [f32; 3]) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// The median of the outermost pixels: the paper or canvas colour.
fn border_median(gray: &[f32], w: usize, h: usize) -> f32 {
    let mut border = Vec::with_capacity(2 * (w + h));
    for (y, row) in gray.chunks_exact(w).enumerate() {
        if y == 0 || y == h - 1 {
            border.extend_from_slice(row);
        } else {
            border.push(row[0]);
            if w > 1 {
                border.push(row[w - 1]);
            }
        }
    }
    let middle = border.len() / 2;
    *border.select_nth_unstable_by(middle, f32::total_cmp).1
}

/// Wraps 28x28 MNIST pixels as an image (to write PNGs of dataset digits).
pub fn mnist_image(pixels: &[u8]) -> image::GrayImage {
    image::GrayImage::from_raw(SIDE as u32, SIDE as u32, pixels.to_vec()).expect("28x28 pixels")
}

/// Runs every image of an MNIST split through `to_mnist`, in parallel, so training sees digits
/// exactly as serving will. An image with no ink (none in MNIST) is kept as it is.
pub fn mnist_digits(data: &crate::data::Mnist) -> Vec<[u8; PIXELS]> {
    use rayon::prelude::*;
    (0..data.len())
        .into_par_iter()
        .map(|i| {
            let raw: [u8; PIXELS] = data.image(i).try_into().expect("28x28");
            to_mnist(&DynamicImage::ImageLuma8(mnist_image(&raw))).unwrap_or(raw)
        })
        .collect()
}
