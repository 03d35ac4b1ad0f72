//! A synthetic colour image dataset the tests render for themselves, the second dataset beside
//! MNIST: filled circles, crosses, squares and triangles on plain backgrounds, each image with
//! its own size, colours, position, rotation and noise, written as an ImageFolder of RGB PNGs.

use std::io;
use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};

/// The classes, in sorted order: "circle", "cross", "square", "triangle" (4 classes).
pub const CLASSES: [&str; 4] = ["circle", "cross", "square", "triangle"];

/// How many images [`write_dataset`] draws per class and split, and the seed they derive from.
#[derive(Debug, Clone)]
pub struct Spec {
    pub train_per_class: usize,
    pub test_per_class: usize,
    pub seed: u64,
}

/// The smallest and largest width and height of an image, in pixels.
const MIN_SIDE: u32 = 40;
const MAX_SIDE: u32 = 72;
/// The least luminance difference between the background and the shape.
const MIN_CONTRAST: f64 = 0.35;
/// Samples per pixel along each axis, for anti-aliased edges.
const SUPERSAMPLE: u32 = 4;
/// The per-pixel noise, in grey levels either way.
const NOISE: u32 = 8;

/// Writes an ImageFolder dataset: `root/train/<class>/<n>.png` and `root/test/<class>/<n>.png`
/// (RGB8 PNGs, `n` from 0), creating the folders and replacing files already there. Returns the
/// number of files written.
///
/// Each image is seeded from (`spec.seed`, split, class, n) alone, so a file's content never
/// depends on the others, and train and test are drawn from different seeds.
pub fn write_dataset(root: &Path, spec: &Spec) -> io::Result<usize> {
    let mut written = 0;
    for (split, (name, per_class)) in
        [("train", spec.train_per_class), ("test", spec.test_per_class)].into_iter().enumerate()
    {
        for (class, class_name) in CLASSES.iter().enumerate() {
            let dir = root.join(name).join(class_name);
            std::fs::create_dir_all(&dir).map_err(|e| at(&dir, e))?;
            for n in 0..per_class {
                let png = encode(&render(class, image_seed(spec.seed, split, class, n)))?;
                let file = dir.join(format!("{n}.png"));
                std::fs::write(&file, png).map_err(|e| at(&file, e))?;
                written += 1;
            }
        }
    }
    Ok(written)
}

/// One image of `class` (index into [`CLASSES`]) drawn from `seed`: what a user would upload as
/// feedback. Deterministic.
///
/// # Panics
/// When `class` is not below `CLASSES.len()`.
pub fn render(class: usize, seed: u64) -> RgbImage {
    assert!(class < CLASSES.len(), "class {class} is not below {}", CLASSES.len());
    let mut rng = SplitMix(seed);
    Scene::draw(&mut rng).paint(class, Style::Filled, &mut rng)
}

/// `render` encoded as PNG bytes.
pub fn render_png(class: usize, seed: u64) -> Vec<u8> {
    encode(&render(class, seed)).expect("encoding a PNG into memory does not fail")
}

/// How a shape is drawn: as in the dataset, as an outline (the inner 70% left as background),
/// or faint (its colour halfway from the background's): the styles the dataset
/// never shows, for a shift that feedback teaches a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Filled,
    Outline,
    Faint,
}

/// One image of `class` drawn from `seed` in `style`, as PNG bytes.
pub fn render_styled_png(class: usize, seed: u64, style: Style) -> Vec<u8> {
    assert!(class < CLASSES.len(), "class {class} is not below {}", CLASSES.len());
    let mut rng = SplitMix(seed);
    let image = Scene::draw(&mut rng).paint(class, style, &mut rng);
    encode(&image).expect("encoding a PNG into memory does not fail")
}

fn encode(image: &RgbImage) -> io::Result<Vec<u8>> {
    let mut png = Vec::new();
    image.write_to(&mut io::Cursor::new(&mut png), ImageFormat::Png).map_err(io::Error::other)?;
    Ok(png)
}

fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The seed of image `n` of `class` in `split` (0 train, 1 test).
fn image_seed(seed: u64, split: usize, class: usize, n: usize) -> u64 {
    [split as u64, class as u64, n as u64].into_iter().fold(seed, |acc, part| SplitMix(acc ^ part).next_u64())
}

/// Everything about an image but its shape's outline; colours are RGB in [0, 1].
struct Scene {
    width: u32,
    height: u32,
    background: [f64; 3],
    ink: [f64; 3],
    centre: (f64, f64),
    /// The radius of the circle the shape's corners lie on.
    radius: f64,
    angle: f64,
}

impl Scene {
    fn draw(rng: &mut SplitMix) -> Self {
        let width = MIN_SIDE + rng.below(MAX_SIDE - MIN_SIDE + 1);
        let height = MIN_SIDE + rng.below(MAX_SIDE - MIN_SIDE + 1);
        let (background, ink) = loop {
            let (a, b) = (rng.colour(), rng.colour());
            if (luminance(a) - luminance(b)).abs() >= MIN_CONTRAST {
                break (a, b);
            }
        };
        // The shape spans 45-80% of the short side; its circle stays a pixel inside the edges.
        let radius = f64::from(width.min(height)) * (0.45 + 0.35 * rng.unit()) / 2.0;
        let mut jitter = |side: u32| {
            let half = f64::from(side) / 2.0;
            half + (half - radius - 1.0) * (2.0 * rng.unit() - 1.0)
        };
        let centre = (jitter(width), jitter(height));
        Self { width, height, background, ink, centre, radius, angle: std::f64::consts::TAU * rng.unit() }
    }

    /// Paints the shape in `style`.
    fn paint(&self, class: usize, style: Style, rng: &mut SplitMix) -> RgbImage {
        let hollow = style == Style::Outline;
        let strength = if style == Style::Faint { 0.25 } else { 1.0 };
        let (sin, cos) = self.angle.sin_cos();
        let step = 1.0 / f64::from(SUPERSAMPLE);
        RgbImage::from_fn(self.width, self.height, |x, y| {
            let (px, py) = (f64::from(x) - self.centre.0, f64::from(y) - self.centre.1);
            let mut hits = 0;
            if (px + 0.5).hypot(py + 0.5) <= self.radius + 1.0 {
                for i in 0..SUPERSAMPLE {
                    for j in 0..SUPERSAMPLE {
                        let (dx, dy) = (px + (f64::from(i) + 0.5) * step, py + (f64::from(j) + 0.5) * step);
                        let (u, v) = (dx * cos + dy * sin, dy * cos - dx * sin);
                        let inside = contains(class, u, v, self.radius);
                        hits += u32::from(inside && !(hollow && contains(class, u, v, 0.7 * self.radius)));
                    }
                }
            }
            let cover = f64::from(hits) / f64::from(SUPERSAMPLE * SUPERSAMPLE);
            let noise = f64::from(rng.below(2 * NOISE + 1)) - f64::from(NOISE);
            Rgb(std::array::from_fn(|c| {
                let value = self.background[c] + strength * cover * (self.ink[c] - self.background[c]);
                (255.0 * value + noise).round().clamp(0.0, 255.0) as u8
            }))
        })
    }
}

/// Whether the point (u, v), in the shape's own frame (centred, unrotated, y down), lies in the
/// shape of `class` whose corners touch the circle of radius `r`.
fn contains(class: usize, u: f64, v: f64, r: f64) -> bool {
    let (au, av) = (u.abs(), v.abs());
    match CLASSES[class] {
        "circle" => u * u + v * v <= r * r,
        "cross" => {
            // Two bars of thickness 30% of the cross's span: half-thickness 0.3 * arm.
            let arm = r / 1.09f64.sqrt();
            let half = 0.3 * arm;
            (au <= arm && av <= half) || (au <= half && av <= arm)
        }
        "square" => au.max(av) <= r * std::f64::consts::FRAC_1_SQRT_2,
        // Equilateral, apex up: the base at v = r/2, the two sides 60° from it.
        _ => 2.0 * v <= r && 3f64.sqrt() * au - v <= r,
    }
}

/// Relative luminance (Rec. 709 weights) of an RGB colour in [0, 1].
fn luminance([r, g, b]: [f64; 3]) -> f64 {
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

/// SplitMix64: a tiny seeded generator, so an image depends on its seed alone.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    fn below(&mut self, n: u32) -> u32 {
        (self.unit() * f64::from(n)) as u32
    }

    /// A colour of random hue, saturation 0.3-1 and value 0.1-1 (HSV), as RGB in [0, 1].
    fn colour(&mut self) -> [f64; 3] {
        let (h, s, v) = (6.0 * self.unit(), 0.3 + 0.7 * self.unit(), 0.1 + 0.9 * self.unit());
        let f = |k: f64| {
            let k = (k + h) % 6.0;
            v - v * s * k.min(4.0 - k).clamp(0.0, 1.0)
        };
        [f(5.0), f(3.0), f(1.0)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
        for class in 0..CLASSES.len() {
            let png = render_png(class, 7);
            assert_eq!(png, render_png(class, 7));
            assert_ne!(png, render_png(class, 8));
            let decoded = image::load_from_memory_with_format(&png, ImageFormat::Png).expect("decode");
            assert_eq!(decoded.color(), image::ColorType::Rgb8);
            assert_eq!(decoded.to_rgb8(), render(class, 7));
        }
    }

    #[test]
    fn sizes_stay_within_bounds_and_vary() {
        let sizes: Vec<_> = (0..200).map(|seed| render(seed as usize % 4, seed).dimensions()).collect();
        let range = MIN_SIDE..=MAX_SIDE;
        assert!(sizes.iter().all(|(w, h)| range.contains(w) && range.contains(h)), "{sizes:?}");
        assert!(sizes.iter().filter(|(w, h)| w != h).count() > 150, "most images are not square");
        assert!(sizes.iter().any(|&(w, _)| w < 45) && sizes.iter().any(|&(w, _)| w > 67), "{sizes:?}");
    }

    #[test]
    fn every_shape_lies_inside_its_image_on_a_contrasting_background() {
        for (class, name) in CLASSES.iter().enumerate() {
            for seed in 0..50 {
                let scene = Scene::draw(&mut SplitMix(seed));
                assert!((luminance(scene.background) - luminance(scene.ink)).abs() >= MIN_CONTRAST);
                let near = |pixel: &Rgb<u8>, colour: [f64; 3]| {
                    (0..3).all(|c| (f64::from(pixel[c]) - 255.0 * colour[c]).abs() <= f64::from(NOISE) + 1.0)
                };
                let image = render(class, seed);
                let (w, h) = image.dimensions();
                for (x, y, pixel) in image.enumerate_pixels() {
                    if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
                        assert!(near(pixel, scene.background), "{name} {seed}: ({x}, {y}) is {pixel:?}");
                    }
                }
                // Every shape covers its centre.
                let (cx, cy) = scene.centre;
                assert!(near(image.get_pixel(cx as u32, cy as u32), scene.ink), "{name} {seed}");
            }
        }
    }

    #[test]
    fn an_outline_is_the_same_scene_with_its_middle_left_as_background() {
        for (class, name) in CLASSES.iter().enumerate() {
            let scene = Scene::draw(&mut SplitMix(3));
            let filled = render(class, 3);
            let outline =
                image::load_from_memory(&render_styled_png(class, 3, Style::Outline)).expect("decode").to_rgb8();
            assert_eq!(outline.dimensions(), filled.dimensions(), "{name}");
            let near = |pixel: &Rgb<u8>, colour: [f64; 3]| {
                (0..3).all(|c| (f64::from(pixel[c]) - 255.0 * colour[c]).abs() <= f64::from(NOISE) + 1.0)
            };
            let (cx, cy) = scene.centre;
            assert!(near(outline.get_pixel(cx as u32, cy as u32), scene.background), "{name}: the middle is hollow");
            let ink = |image: &RgbImage| image.pixels().filter(|p| !near(p, scene.background)).count();
            assert!(ink(&outline) * 4 < ink(&filled) * 3 && ink(&outline) * 4 > ink(&filled), "{name}");
        }
    }

    #[test]
    fn writes_an_image_folder_whose_files_do_not_depend_on_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let small = dir.path().join("small");
        let big = dir.path().join("big");
        assert_eq!(write_dataset(&small, &Spec { train_per_class: 2, test_per_class: 1, seed: 3 }).expect("write"), 12);
        assert_eq!(write_dataset(&big, &Spec { train_per_class: 3, test_per_class: 2, seed: 3 }).expect("write"), 20);
        let list = |path: &Path| {
            let mut names: Vec<_> = std::fs::read_dir(path)
                .expect("read dir")
                .map(|entry| entry.expect("entry").file_name().into_string().expect("utf-8"))
                .collect();
            names.sort();
            names
        };
        assert_eq!(list(&big), ["test", "train"]);
        for (split, files) in [("train", ["0.png", "1.png", "2.png"].as_slice()), ("test", &["0.png", "1.png"])] {
            assert_eq!(list(&big.join(split)), CLASSES);
            for class in CLASSES {
                assert_eq!(list(&big.join(split).join(class)), files);
            }
        }
        let read = |path: std::path::PathBuf| std::fs::read(path).expect("read");
        for file in ["train/circle/0.png", "train/triangle/1.png", "test/square/0.png"] {
            assert_eq!(read(small.join(file)), read(big.join(file)), "{file}");
        }
        assert_ne!(read(big.join("train/cross/0.png")), read(big.join("test/cross/0.png")));
        let image = image::open(big.join("test/cross/1.png")).expect("open");
        assert_eq!(image.color(), image::ColorType::Rgb8);
    }

    /// The radial ink profile: grey, minus the background (the border's mean), contrast-normalised
    /// and thresholded to cut the noise, then the ink's share in 16 rings around its centre of
    /// mass, radii scaled by the square root of its area. Blind to position, size and rotation.
    fn profile(image: &RgbImage) -> Vec<f64> {
        const BINS: usize = 16;
        let (w, h) = (image.width() as usize, image.height() as usize);
        let grey: Vec<f64> = image.pixels().map(|p| luminance(p.0.map(|c| f64::from(c) / 255.0))).collect();
        let on_border = |i: usize| [0, w - 1].contains(&(i % w)) || [0, h - 1].contains(&(i / w));
        let border: Vec<f64> = (0..w * h).filter(|&i| on_border(i)).map(|i| grey[i]).collect();
        let background = border.iter().sum::<f64>() / border.len() as f64;
        let contrast = grey.iter().map(|g| (g - background).abs()).fold(f64::MIN_POSITIVE, f64::max);
        let ink: Vec<f64> =
            grey.iter().map(|g| ((g - background).abs() / contrast / 0.4 - 0.75).clamp(0.0, 1.0)).collect();
        let area: f64 = ink.iter().sum();
        let cx = (0..w * h).map(|i| ink[i] * (i % w) as f64).sum::<f64>() / area;
        let cy = (0..w * h).map(|i| ink[i] * (i / w) as f64).sum::<f64>() / area;
        let mut bins = vec![0.0; BINS];
        for (i, ink) in ink.iter().enumerate() {
            let r = ((i % w) as f64 - cx).hypot((i / w) as f64 - cy) / area.sqrt();
            if let Some(bin) = bins.get_mut((r / 1.2 * BINS as f64) as usize) {
                *bin += ink / area;
            }
        }
        bins
    }

    #[test]
    fn a_nearest_centroid_classifier_tells_the_classes_apart() {
        let samples = |split: usize, per_class: usize| {
            (0..CLASSES.len()).flat_map(move |class| {
                (0..per_class).map(move |n| (class, profile(&render(class, image_seed(1, split, class, n)))))
            })
        };
        let mut centroids = vec![vec![0.0; 16]; CLASSES.len()];
        for (class, x) in samples(0, 40) {
            centroids[class].iter_mut().zip(&x).for_each(|(c, v)| *c += v / 40.0);
        }
        let distance = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>();
        let test: Vec<_> = samples(1, 40).collect();
        let right = test
            .iter()
            .filter(|(class, x)| {
                let nearest = (0..CLASSES.len())
                    .min_by(|&a, &b| distance(&centroids[a], x).total_cmp(&distance(&centroids[b], x)));
                nearest == Some(*class)
            })
            .count();
        let accuracy = right as f64 / test.len() as f64;
        assert!(accuracy > 0.9, "nearest-centroid accuracy {accuracy}");
    }
}
