//! The one preprocessing function shared by training and serving, so a digit drawn on a canvas,
//! photographed on paper or read from MNIST reaches the model in the same form. It follows
//! MNIST's own recipe: grayscale, light ink on dark, crop to the ink, fit in 20x20 keeping the
//! aspect ratio, then place in 28x28 with the centre of mass in the middle.

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

/// Ink intensity in [0, 1] (the range `image` keeps `f32` pixels in when resizing).
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
    let rgba = image.to_rgba32f();
    let (w, h) = rgba.dimensions();
    // Transparent pixels take the colour the ink is not, so strokes on a transparent canvas survive.
    let (mut sum, mut weight) = (0.0f32, 0.0f32);
    for p in rgba.pixels() {
        sum += luma(p.0) * p.0[3];
        weight += p.0[3];
    }
    let ink_is_dark = weight > 0.0 && sum / weight < 0.5;
    let backdrop = if ink_is_dark { 1.0 } else { 0.0 };
    let mut gray = Gray::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        Luma([luma(p) * p[3] + backdrop * (1.0 - p[3])])
    });
    let mut background = border_median(&gray);
    if background > 0.5 {
        gray.pixels_mut().for_each(|p| p.0[0] = 1.0 - p.0[0]);
        background = 1.0 - background;
    }
    let peak = gray.pixels().fold(0.0f32, |m, p| m.max(p.0[0]));
    let contrast = peak - background;
    if contrast < MIN_CONTRAST {
        return Err(PreprocessError::Blank { contrast });
    }
    let stretch = 1.0 / contrast;
    gray.pixels_mut().for_each(|p| p.0[0] = ((p.0[0] - background) * stretch).max(0.0));
    Ok(gray)
}

fn luma([r, g, b, _]: [f32; 4]) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// The median of the outermost pixels: the paper or canvas colour.
fn border_median(gray: &Gray) -> f32 {
    let (w, h) = gray.dimensions();
    let mut border: Vec<f32> = gray
        .enumerate_pixels()
        .filter(|(x, y, _)| *x == 0 || *y == 0 || *x == w - 1 || *y == h - 1)
        .map(|(_, _, p)| p.0[0])
        .collect();
    border.sort_by(f32::total_cmp);
    border[border.len() / 2]
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
