//! The one preprocessing function shared by training and serving, [`to_input`]: any image
//! becomes the task's input (channels x height x width `u8` values, planes one after another),
//! the same way wherever it came from. Three ways, chosen by the task:
//!
//! - `digit` follows MNIST's own recipe: grayscale, light ink on dark, crop to the ink, fit in
//!   20/28 of the side keeping the aspect ratio, centre of mass in the middle. The box and the
//!   centre are measured to a fraction of a pixel (`ink.rs`) and the digit is drawn in one
//!   resampling step (`resample.rs`), so its size and position in the input do not change what
//!   the model sees.
//! - `fit` scales the whole image to fit, keeping its aspect ratio, and pads with its border
//!   colour; `crop` scales the short side to fit and centre-crops the long one. Both resample
//!   the same way, per channel.

mod ink;
mod resample;

use gitops::task::{InputShape, Preprocess, Task};
use image::{DynamicImage, ImageBuffer, Luma};
use ink::Ink;
use resample::{Axis, Resampler};

use crate::data::{PIXELS, SIDE};

/// The side the ink's box is scaled to in a 28-pixel output (others scale it). MNIST fits its
/// digits in 20x20 whole pixels; measured between the points where the ink fades out
/// (`ink.rs`), the same digits span 20.75.
const FIT: f32 = 20.75;
/// Where the centre of mass goes in a 28-pixel output: the middle of pixel (14, 14), as MNIST.
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

/// Turns any image into the task's input: `u8` values, channel planes one after another.
pub fn to_input(task: &Task, image: &DynamicImage) -> Result<Vec<u8>, PreprocessError> {
    let InputShape { channels, height, width } = task.input;
    let size = (width as usize, height as usize);
    match task.preprocess {
        Preprocess::Digit => to_digit(image, size),
        Preprocess::Fit => Ok(to_photo(image, channels, size, false)),
        Preprocess::Crop => Ok(to_photo(image, channels, size, true)),
    }
}

/// `to_input` followed by the normalisation the model was trained with.
pub fn preprocess(task: &Task, image: &DynamicImage) -> Result<Vec<f32>, PreprocessError> {
    Ok(normalize(task, &to_input(task, image)?))
}

/// Scales `u8` values to [0, 1] and standardises each channel plane with the task's mean and
/// deviation.
pub fn normalize(task: &Task, values: &[u8]) -> Vec<f32> {
    if task.schema().is_some() {
        // A tabular input is stored as its encoded row; the network standardises it itself.
        return values.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    }
    let plane = task.input.pixels();
    let mut out = Vec::with_capacity(values.len());
    for (c, chunk) in values.chunks(plane).enumerate() {
        let channel = c % task.input.channels as usize;
        let (mean, std) = (task.normalize.mean[channel], task.normalize.std[channel]);
        out.extend(chunk.iter().map(|&p| (UNIT[p as usize] - mean) / std));
    }
    out
}

/// Turns any image into a 28x28 MNIST-style digit: `u8` pixels, white ink on black.
pub fn to_mnist(image: &DynamicImage) -> Result<[u8; PIXELS], PreprocessError> {
    Ok(to_digit(image, (SIDE, SIDE))?.try_into().expect("28x28 values"))
}

/// A digit of `width` x `height`: ink cropped, fitted and centred by its centre of mass.
fn to_digit(image: &DynamicImage, (width, height): (usize, usize)) -> Result<Vec<u8>, PreprocessError> {
    let gray = ink_map(image)?;
    // Exact for 28: 20.75 * 28 / 28.
    let fit = FIT * width.min(height) as f32 / SIDE as f32;
    // Faint ink up to half an output pixel outside the box is drawn too, at any resolution.
    let ink = Ink::measure(&gray, 0.5 / fit).ok_or(PreprocessError::Blank { contrast: 0.0 })?;
    let scale = fit / ink.extent;
    let x = Axis {
        centre: ink.cx,
        target: CENTRE * width as f32 / SIDE as f32,
        scale,
        keep: ink.columns,
        replicate: false,
    };
    let y =
        Axis { centre: ink.cy, target: CENTRE * height as f32 / SIDE as f32, scale, keep: ink.rows, replicate: false };
    let size = (gray.width() as usize, gray.height() as usize);
    Ok(resample::quantize(&Resampler::new(size, (width, height), x, y).apply(gray.as_raw())))
}

/// A photo of `width` x `height`: scaled to fit and padded with its border colour, or with
/// `crop` scaled to cover and centre-cropped.
fn to_photo(image: &DynamicImage, channels: u32, (width, height): (usize, usize), crop: bool) -> Vec<u8> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if w == 0 || h == 0 {
        return vec![0; channels as usize * width * height];
    }
    let (sx, sy) = (width as f32 / w as f32, height as f32 / h as f32);
    let scale = if crop { sx.max(sy) } else { sx.min(sy) };
    let axis = |len: usize, out: usize| Axis {
        centre: len as f32 / 2.0,
        target: out as f32 / 2.0,
        scale,
        keep: (f32::MIN, f32::MAX),
        replicate: crop,
    };
    let resampler = Resampler::new((w, h), (width, height), axis(w, width), axis(h, height));
    let mut out = Vec::with_capacity(channels as usize * width * height);
    for plane in planes(image, channels) {
        // Padding is the border colour: resample the difference to it, whose padding is zero.
        let background = if crop { 0.0 } else { border_median(&plane, w, h) };
        let shifted: Vec<f32> = plane.iter().map(|v| v - background).collect();
        let drawn: Vec<f32> = resampler.apply(&shifted).into_iter().map(|v| v + background).collect();
        out.extend(resample::quantize(&drawn));
    }
    out
}

/// The image's values in [0, 1] as one plane per channel (grey, or red, green and blue), with
/// transparency composited over white.
fn planes(image: &DynamicImage, channels: u32) -> Vec<Vec<f32>> {
    let rgba = image.to_rgba32f();
    let over_white = |p: &image::Rgba<f32>, c: usize| p.0[c] * p.0[3] + (1.0 - p.0[3]);
    if channels == 1 {
        return vec![rgba.pixels().map(|p| luma([0, 1, 2].map(|c| over_white(p, c)))).collect()];
    }
    (0..3).map(|c| rgba.pixels().map(|p| over_white(p, c)).collect()).collect()
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

/// The task's input as an image (grey or RGB), for thumbnails and exported samples.
pub fn input_image(task: &Task, values: &[u8]) -> DynamicImage {
    let (w, h) = (task.input.width, task.input.height);
    let plane = task.input.pixels();
    if task.input.channels == 1 {
        return DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, values.to_vec()).expect("one plane"));
    }
    let rgb: Vec<u8> = (0..plane).flat_map(|i| [values[i], values[plane + i], values[2 * plane + i]]).collect();
    DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, rgb).expect("three planes"))
}
