//! Speed of `preprocess::to_mnist` on the three kinds of input users send: a 28x28 grayscale
//! digit, a 280x280 browser canvas (dark strokes on transparent RGBA) and a 2000x1500 photo of
//! dark ink on light paper (RGB). The digit is a drawn ring, so no data is needed. Prints one
//! JSON object per figure, the median of repeated calls.

use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use std::time::Instant;

/// Ink in [0, 1] of a ring with radius and stroke given as shares of the image's height.
fn ring(x: u32, y: u32, w: u32, h: u32) -> f32 {
    let (dx, dy) = (x as f32 + 0.5 - w as f32 / 2.0, y as f32 + 0.5 - h as f32 / 2.0);
    let from_stroke = ((dx * dx + dy * dy).sqrt() - 0.3 * h as f32).abs();
    (1.0 - from_stroke / (0.06 * h as f32)).clamp(0.0, 1.0)
}

fn median_micros(image: &DynamicImage, runs: usize) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(model::preprocess::to_mnist(image).expect("the ring is ink"));
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn main() {
    let ink = |v: f32| (v * 255.0).round() as u8;
    let digit = GrayImage::from_fn(28, 28, |x, y| Luma([ink(ring(x, y, 28, 28))]));
    let canvas = RgbaImage::from_fn(280, 280, |x, y| Rgba([20, 20, 20, ink(ring(x, y, 280, 280))]));
    let photo = RgbImage::from_fn(2000, 1500, |x, y| Rgb([255 - ink(0.8 * ring(x, y, 2000, 1500)); 3]));
    for (name, image, runs) in [
        ("gray_28", DynamicImage::ImageLuma8(digit), 5000),
        ("canvas_280_rgba", DynamicImage::ImageRgba8(canvas), 500),
        ("photo_2000x1500_rgb", DynamicImage::ImageRgb8(photo), 20),
    ] {
        println!("{{\"figure\": \"to_mnist_{name}_us\", \"value\": {:.1}}}", median_micros(&image, runs));
    }
}
