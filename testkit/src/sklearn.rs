//! scikit-learn's 1,797 handwritten 8x8 digits (43 writers, another scanner and population
//! than MNIST), from the wheel, which ships them: no download. The drift benchmark and the
//! out-of-fold label test feed them as uploads.

use std::io::Cursor;
use std::process::Command;

/// The pinned wheel the digits come from.
pub const PACKAGE: &str = "scikit-learn==1.7.2";

/// The 1,797 digits as `side`x`side` PNGs (light ink on dark, smoothly upscaled) with their
/// labels, in a fixed shuffled order. Installs scikit-learn once into a cached venv.
pub fn digits(side: u32) -> Vec<(Vec<u8>, u8)> {
    let python = crate::venv_tool("sklearn-venv", &[PACKAGE], "python");
    let csv = crate::run(
        Command::new(python).args([
            "-c",
            "from sklearn.datasets import load_digits\nd = load_digits()\nfor x, y in zip(d.data, d.target):\n    print(int(y), *[int(v) for v in x], sep=',')",
        ]),
        "exporting scikit-learn's digits",
    );
    let mut digits: Vec<(u64, Vec<u8>, u8)> = csv
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let values: Vec<u8> = line.split(',').map(|v| v.parse().expect("a number")).collect();
            let pixels: Vec<u8> = values[1..].iter().map(|&v| (u16::from(v) * 255 / 16) as u8).collect();
            let small = image::GrayImage::from_raw(8, 8, pixels).expect("64 pixels");
            let big = image::imageops::resize(&small, side, side, image::imageops::FilterType::Triangle);
            let mut png = Vec::new();
            big.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).expect("PNG encodes");
            // A fixed shuffle: SplitMix64 of the index.
            let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31), png, values[0])
        })
        .collect();
    assert_eq!(digits.len(), 1797, "scikit-learn ships 1,797 digits");
    digits.sort_by_key(|d| d.0);
    digits.into_iter().map(|(_, png, label)| (png, label)).collect()
}
