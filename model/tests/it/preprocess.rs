//! The shared preprocessing makes a digit look the same to the model however it arrives:
//! inverted, enlarged, off-centre, on a non-square canvas.

use gitops::model_file::ModelFile;
use gitops::task::Task;
use image::{DynamicImage, GrayImage, Luma, imageops};
use model::data::{Mnist, Split};
use model::preprocess::{self, PreprocessError, mnist_image};
use model::{Classifier, Weights};
use pipeline::registry::Registry;

fn serving_classifier() -> Classifier {
    let models = testkit::workspace_root().join("models");
    let version = Registry::load(&models).unwrap().serving;
    Classifier::new(
        ModelFile::new(&models, &version)
            .unwrap()
            .load(tch::Device::Cpu, &gitops::task::Task::default(), None)
            .unwrap(),
    )
}

/// The variants a user might send of one MNIST digit.
fn variants(digit: &GrayImage) -> Vec<(&'static str, DynamicImage)> {
    let inverted = GrayImage::from_fn(28, 28, |x, y| Luma([255 - digit.get_pixel(x, y).0[0]]));
    let large = imageops::resize(digit, 280, 280, imageops::FilterType::Triangle);
    let mut off_centre = GrayImage::new(200, 120);
    imageops::overlay(&mut off_centre, &imageops::resize(digit, 56, 56, imageops::FilterType::Triangle), 130, 8);
    let mut paper = GrayImage::from_pixel(90, 300, Luma([235]));
    let ink = imageops::resize(&inverted, 84, 84, imageops::FilterType::Triangle);
    imageops::overlay(
        &mut paper,
        &GrayImage::from_fn(84, 84, |x, y| Luma([ink.get_pixel(x, y).0[0].min(235)])),
        3,
        150,
    );
    vec![
        ("inverted", DynamicImage::ImageLuma8(inverted)),
        ("large", DynamicImage::ImageLuma8(large)),
        ("off-centre", DynamicImage::ImageLuma8(off_centre)),
        ("tall paper", DynamicImage::ImageLuma8(paper)),
    ]
}

#[test]
fn prediction_is_the_same_for_every_variant_of_a_digit() {
    let Some(dir) = testkit::shared_mnist() else { return };
    let test = Mnist::load(&dir, Split::Test).unwrap();
    let classifier = serving_classifier();
    let tmp = tempfile::tempdir().unwrap();
    let mut changed = Vec::new();
    for i in 0..100 {
        let digit = mnist_image(test.image(i));
        // Through a PNG file, as users send them.
        let png = tmp.path().join(format!("{i}.png"));
        digit.save(&png).unwrap();
        let plain = classifier.predict(&preprocess::preprocess(&Task::default(), &image::open(&png).unwrap()).unwrap())
            [0]
        .index;
        for (name, variant) in variants(&digit) {
            let got = classifier.predict(&preprocess::preprocess(&Task::default(), &variant).unwrap())[0].index;
            if got != plain {
                changed.push(format!("#{i} (label {}): plain {plain}, {name} {got}", test.labels[i]));
            }
        }
    }
    assert!(changed.is_empty(), "{changed:#?}");
}

#[test]
fn every_variant_reaches_the_model_within_a_few_grey_levels() {
    let Some(dir) = testkit::shared_mnist() else { return };
    let test = Mnist::load(&dir, Split::Test).unwrap();
    let mut drift = [0.0f64; 4];
    for i in 0..100 {
        let digit = mnist_image(test.image(i));
        let plain = preprocess::to_mnist(&DynamicImage::ImageLuma8(digit.clone())).unwrap();
        for (k, (_, variant)) in variants(&digit).iter().enumerate() {
            let seen = preprocess::to_mnist(variant).unwrap();
            drift[k] += plain.iter().zip(seen).map(|(&a, b)| (a as f64 - b as f64).abs()).sum::<f64>() / 784.0 / 100.0;
        }
    }
    // Mean absolute difference per pixel, of 255. Inverting is exact and enlarging by
    // interpolation nearly so; the 2x and 3x copies lose a little sharpness in their own
    // resampling, and the paper's grey clips the faintest ink.
    let [inverted, large, off_centre, paper] = drift;
    assert!(inverted < 0.01 && large < 0.5, "inverted {inverted:.2}, large {large:.2}");
    assert!(off_centre < 3.0 && paper < 3.0, "off-centre {off_centre:.2}, tall paper {paper:.2}");
}

#[test]
fn an_mnist_digit_keeps_its_shape() {
    let Some(dir) = testkit::shared_mnist() else { return };
    let test = Mnist::load(&dir, Split::Test).unwrap();
    for i in 0..20 {
        let raw = test.image(i);
        let out = preprocess::to_mnist(&DynamicImage::ImageLuma8(mnist_image(raw))).unwrap();
        let diff: f64 = raw.iter().zip(out).map(|(&a, b)| (a as f64 - b as f64).abs()).sum::<f64>() / 784.0;
        assert!(diff < 16.0, "digit #{i} changed by {diff:.1} grey levels per pixel on average");
    }
}

#[test]
fn every_pixel_layout_of_a_digit_gives_the_same_input() {
    let Some(dir) = testkit::shared_mnist() else { return };
    let test = Mnist::load(&dir, Split::Test).unwrap();
    for i in 0..10 {
        let gray = DynamicImage::ImageLuma8(mnist_image(test.image(i)));
        let expected = preprocess::to_mnist(&gray).unwrap();
        let layouts = [
            ("RGB", DynamicImage::ImageRgb8(gray.to_rgb8())),
            ("RGBA", DynamicImage::ImageRgba8(gray.to_rgba8())),
            ("gray + alpha", DynamicImage::ImageLumaA8(gray.to_luma_alpha8())),
            ("16-bit gray", DynamicImage::ImageLuma16(gray.to_luma16())),
            ("float RGB", DynamicImage::ImageRgb32F(gray.to_rgb32f())),
        ];
        for (name, image) in layouts {
            let got = preprocess::to_mnist(&image).unwrap();
            let worst = expected.iter().zip(got).map(|(&a, b)| a.abs_diff(b)).max().unwrap();
            assert!(worst <= 1, "digit #{i} as {name}: a pixel differs by {worst}");
        }
    }
}

#[test]
fn a_one_pixel_line_is_a_digit_too() {
    // A 1-pixel-high strip and a 1-pixel-wide one: the border is the whole image, mostly dark.
    let strip = GrayImage::from_fn(40, 1, |x, _| Luma([if (15..25).contains(&x) { 255 } else { 0 }]));
    let column = GrayImage::from_fn(1, 40, |_, y| Luma([if (15..25).contains(&y) { 255 } else { 0 }]));
    for image in [strip, column] {
        let out = preprocess::to_mnist(&DynamicImage::ImageLuma8(image)).unwrap();
        assert!(out.iter().map(|&p| p as u32).sum::<u32>() > 255 * 10, "the line leaves ink");
    }
}

#[test]
fn transparent_canvas_strokes_are_ink() {
    // What a browser canvas sends: dark strokes on a fully transparent background.
    let mut canvas = image::RgbaImage::new(280, 280);
    for y in 40..240 {
        for x in 130..150 {
            canvas.put_pixel(x, y, image::Rgba([0, 0, 0, 255]));
        }
    }
    let out = preprocess::to_mnist(&DynamicImage::ImageRgba8(canvas)).unwrap();
    let ink: u32 = out.iter().map(|&p| p as u32).sum();
    assert!(ink > 255 * 20, "a vertical bar should leave ink, got {ink}");
    assert_eq!(out[0], 0, "background stays black");
}

#[test]
fn a_blank_image_is_refused() {
    for shade in [0u8, 128, 255] {
        let blank = DynamicImage::ImageLuma8(GrayImage::from_pixel(64, 64, Luma([shade])));
        assert!(matches!(preprocess::to_mnist(&blank), Err(PreprocessError::Blank { .. })), "shade {shade}");
    }
    for (w, h) in [(0, 0), (0, 5), (5, 0)] {
        let empty = DynamicImage::ImageLuma8(GrayImage::new(w, h));
        assert!(matches!(preprocess::to_mnist(&empty), Err(PreprocessError::Blank { .. })), "{w}x{h}");
    }
}
