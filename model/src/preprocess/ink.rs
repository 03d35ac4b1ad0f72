//! Where the ink is: its box and centre of mass, measured to a fraction of a pixel.
//!
//! Both are measured on the continuous image that interpolates linearly between pixel centres
//! (pixel `i` spans `[i, i + 1)`, and beyond the edges lies background), so a digit and an
//! enlarged or shifted copy of it give the same box and centre, scaled or shifted. Counting
//! whole pixels instead moves a box edge by up to a pixel with the resolution, which rescales
//! a 20-pixel digit by 5%.

use super::Gray;

/// Where the interpolated image rises above this share of the brightest ink is the box's edge.
const INK_THRESHOLD: f32 = 0.1;

/// The ink's box and centre of mass, in source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Ink {
    /// The longer side of the box.
    pub extent: f32,
    /// The box's columns and rows, grown by the margin.
    pub columns: (f32, f32),
    pub rows: (f32, f32),
    pub cx: f32,
    pub cy: f32,
}

impl Ink {
    /// Measures `gray` (ink in [0, 1] on a zero background); `None` when nothing crosses the
    /// threshold. The box is grown on every side by `margin` times its longer side, and the
    /// centre of mass counts only the pixels within it, so faint noise elsewhere on a photo
    /// does not pull it.
    pub fn measure(gray: &Gray, margin: f32) -> Option<Ink> {
        let (w, h) = (gray.width() as usize, gray.height() as usize);
        let raw = gray.as_raw();
        let at = |x: usize, y: usize| raw[y * w + x];
        // The first and last ink pixel of every row give the box in whole pixels.
        let spans: Vec<Option<(usize, usize)>> = raw.chunks_exact(w).map(|line| ink_span(w, |x| line[x])).collect();
        let inked = || spans.iter().enumerate().filter_map(|(y, span)| span.map(|(first, last)| (y, first, last)));
        let (top_row, bottom_row) = (inked().next()?.0, inked().next_back()?.0);
        let first_column = inked().map(|(_, first, _)| first).min()?;
        let last_column = inked().map(|(_, _, last)| last).max()?;
        // An edge crosses the threshold within half a pixel of its outermost ink pixels, so
        // only the lines through those pixels can hold the outermost crossing.
        let across = |y: usize| crossings(w, |x| at(x, y)).expect("an inked row");
        let down = |x: usize| crossings(h, |y| at(x, y)).expect("an inked column");
        let inked_in_row = |y: usize| (0..w).filter(move |&x| at(x, y) > INK_THRESHOLD);
        let left = inked()
            .filter(|&(_, first, _)| first == first_column)
            .map(|(y, _, _)| across(y).0)
            .fold(f32::MAX, f32::min);
        let right =
            inked().filter(|&(_, _, last)| last == last_column).map(|(y, _, _)| across(y).1).fold(f32::MIN, f32::max);
        let top = inked_in_row(top_row).map(|x| down(x).0).fold(f32::MAX, f32::min);
        let bottom = inked_in_row(bottom_row).map(|x| down(x).1).fold(f32::MIN, f32::max);

        let extent = (right - left).max(bottom - top);
        let m = margin * extent;
        let (columns, rows) = ((left - m, right + m), (top - m, bottom + m));
        // The pixels whose centres lie within the grown box.
        let centres = |(lo, hi): (f32, f32), len: usize| {
            let first = (lo as f64 - 0.5).ceil().max(0.0) as usize;
            let end = ((hi as f64 - 0.5).floor() + 1.0).clamp(0.0, len as f64) as usize;
            first..end.max(first)
        };
        let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
        for y in centres(rows, h) {
            let py = y as f64 + 0.5;
            for x in centres(columns, w) {
                let v = at(x, y);
                if v > 0.0 {
                    mass += v as f64;
                    mx += v as f64 * (x as f64 + 0.5);
                    my += v as f64 * py;
                }
            }
        }
        Some(Ink { extent, columns, rows, cx: (mx / mass) as f32, cy: (my / mass) as f32 })
    }
}

/// The first and last of `len` pixels above the threshold.
fn ink_span(len: usize, at: impl Fn(usize) -> f32) -> Option<(usize, usize)> {
    let first = (0..len).find(|&i| at(i) > INK_THRESHOLD)?;
    let last = (first..len).rev().find(|&i| at(i) > INK_THRESHOLD)?;
    Some((first, last))
}

/// Where a line of `len` pixels, interpolated linearly between pixel centres and down to zero
/// beyond its ends, first rises above the threshold and last falls below it.
fn crossings(len: usize, at: impl Fn(usize) -> f32) -> Option<(f32, f32)> {
    let cut = INK_THRESHOLD;
    let (first, last) = ink_span(len, &at)?;
    let before = if first == 0 { 0.0 } else { at(first - 1) };
    let after = if last + 1 == len { 0.0 } else { at(last + 1) };
    let rise = first as f32 - 0.5 + (cut - before) / (at(first) - before);
    let fall = last as f32 + 0.5 + (at(last) - cut) / (at(last) - after);
    Some((rise, fall))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_lies_where_the_interpolated_line_crosses_the_threshold() {
        // Centres at 0.5, 1.5, 2.5, 3.5: the line climbs from 0 to 0.5 between 0.5 and 1.5,
        // crossing 0.1 a fifth of the way; it falls from 1 to 0 between 3.5 and 4.5.
        let line = [0.0, 0.5, 1.0, 1.0];
        let (rise, fall) = crossings(4, |i| line[i]).unwrap();
        assert!((rise - 0.7).abs() < 1e-6, "{rise}");
        assert!((fall - 4.4).abs() < 1e-6, "{fall}");
        assert_eq!(crossings(3, |_| 0.05), None);
    }

    #[test]
    fn a_shifted_enlarged_copy_has_the_box_and_centre_scaled_and_shifted() {
        let dot = Gray::from_fn(9, 9, |x, y| image::Luma([if (3..6).contains(&x) && y == 4 { 1.0 } else { 0.0 }]));
        // Each pixel of `dot` becomes 2x2, shifted by 5 pixels right and 1 down.
        let big = Gray::from_fn(30, 30, |x, y| match (x.checked_sub(5), y.checked_sub(1)) {
            (Some(x), Some(y)) if x < 18 && y < 18 => *dot.get_pixel(x / 2, y / 2),
            _ => image::Luma([0.0]),
        });
        let (small, large) = (Ink::measure(&dot, 0.1).unwrap(), Ink::measure(&big, 0.1).unwrap());
        assert!((large.cx - (2.0 * small.cx + 5.0)).abs() < 1e-4, "{small:?} {large:?}");
        assert!((large.cy - (2.0 * small.cy + 1.0)).abs() < 1e-4, "{small:?} {large:?}");
        // Blocky 2x2 copies interpolate a little wider than twice the box: within a pixel.
        assert!((large.extent - 2.0 * small.extent).abs() < 1.0, "{small:?} {large:?}");
    }
}
