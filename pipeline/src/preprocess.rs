//! The one preprocessing function shared by training and serving, so a digit drawn on a canvas,
//! photographed on paper or read from MNIST reaches the model in the same form. It follows
//! MNIST's own recipe: grayscale, light ink on dark, crop to the ink, fit in 20x20 keeping the
//! aspect ratio, then place in 28x28 with the centre of mass in the middle.

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Luma};

use crate::data::{PIXELS, SIDE};

/// Mean and standard deviation of MNIST's training pixels in [0, 1].
pub const MEAN: f32 = 0.1307;
pub const STD: f32 = 0.3081;

/// The box the ink is scaled to fit, as in MNIST.
const FIT: u32 = 20;
/// How much larger than the box the intermediate canvas is.
const CANVAS: u32 = 4;
/// Pixels dimmer than this share of the brightest ink are not ink when finding its bounding box.
const INK_THRESHOLD: f32 = 0.1;
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
    let mut gray = ink_map(image)?;
    let (x0, y0, x1, y1) = ink_box(&gray).ok_or(PreprocessError::Blank { contrast: 0.0 })?;
    let crop = imageops::crop(&mut gray, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let (w, h) = crop.dimensions();
    let scale = FIT as f32 / w.max(h) as f32;
    let (fw, fh) = (((w as f32 * scale).round() as u32).max(1), ((h as f32 * scale).round() as u32).max(1));
    // Every input reaches the 20x20 box through the same last step, from a canvas 4x as large,
    // so a digit sent small, large or shifted comes out with the same smoothing.
    let canvas = imageops::resize(&crop, fw * CANVAS, fh * CANVAS, FilterType::Triangle);
    let fitted = imageops::resize(&canvas, fw, fh, FilterType::Triangle);
    Ok(place_by_centre_of_mass(&fitted))
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

/// The inclusive bounding box of the ink, or `None` when there is none.
fn ink_box(gray: &Gray) -> Option<(u32, u32, u32, u32)> {
    let cut = INK_THRESHOLD;
    gray.enumerate_pixels().filter(|(_, _, p)| p.0[0] > cut).fold(None, |acc, (x, y, _)| {
        Some(match acc {
            None => (x, y, x, y),
            Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
        })
    })
}

/// Pastes the fitted digit into 28x28 so its centre of mass sits at the centre.
fn place_by_centre_of_mass(fitted: &Gray) -> [u8; PIXELS] {
    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y, p) in fitted.enumerate_pixels() {
        let v = p.0[0].max(0.0) as f64;
        mass += v;
        mx += v * x as f64;
        my += v * y as f64;
    }
    let (cx, cy) = if mass > 0.0 { (mx / mass, my / mass) } else { (0.0, 0.0) };
    // MNIST digits have their centre of mass at pixel (14, 14) on average.
    let centre = SIDE as f64 / 2.0;
    let (dx, dy) = ((centre - cx).round() as i64, (centre - cy).round() as i64);
    let mut out = [0u8; PIXELS];
    for (x, y, p) in fitted.enumerate_pixels() {
        let (tx, ty) = (x as i64 + dx, y as i64 + dy);
        if (0..SIDE as i64).contains(&tx) && (0..SIDE as i64).contains(&ty) {
            out[ty as usize * SIDE + tx as usize] = (p.0[0].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    out
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
