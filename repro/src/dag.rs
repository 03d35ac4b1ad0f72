//! Drawing the DAG: ASCII boxes like `dvc dag`, Graphviz dot, or Mermaid.

use crate::graph::Graph;

/// `dvc dag --dot`.
pub fn dot(g: &Graph) -> String {
    let mut s = String::from("strict digraph  {\n");
    for n in &g.names {
        s.push_str(&format!("\"{n}\";\n"));
    }
    for (a, b) in g.edges() {
        s.push_str(&format!("\"{}\" -> \"{}\";\n", g.names[a], g.names[b]));
    }
    s.push_str("}\n");
    s
}

/// `dvc dag --mermaid`.
pub fn mermaid(g: &Graph) -> String {
    let mut s = String::from("flowchart TD\n");
    for (i, n) in g.names.iter().enumerate() {
        s.push_str(&format!("\tnode{}[\"{n}\"]\n", i + 1));
    }
    for (a, b) in g.edges() {
        s.push_str(&format!("\tnode{}-->node{}\n", a + 1, b + 1));
    }
    s
}

/// Boxes in layers (upstream on top) joined by `*` lines, like `dvc dag`.
pub fn ascii(g: &Graph) -> String {
    let n = g.names.len();
    if n == 0 {
        return String::new();
    }
    // Layer = longest path from a source.
    let mut layer = vec![0usize; n];
    for &i in &g.plan(&[], false, false) {
        layer[i] = g.upstream(i).iter().map(|&u| layer[u] + 1).max().unwrap_or(0);
    }
    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let rows_per_layer = 3 + 3;
    let mut pos = vec![(0usize, 0usize, 0usize); n]; // (row, col, width)
    let mut width = 0;
    for l in 0..layers {
        let mut col = 0;
        for i in (0..n).filter(|&i| layer[i] == l) {
            let w = g.names[i].chars().count() + 4;
            pos[i] = (l * rows_per_layer, col, w);
            col += w + 4;
        }
        width = width.max(col.saturating_sub(4));
    }
    // Center each layer within the widest one.
    for l in 0..layers {
        let members: Vec<usize> = (0..n).filter(|&i| layer[i] == l).collect();
        let used = members.iter().map(|&i| pos[i].2).sum::<usize>() + 4 * members.len().saturating_sub(1);
        let shift = (width - used) / 2;
        for i in members {
            pos[i].1 += shift;
        }
    }
    let height = (layers - 1) * rows_per_layer + 3;
    let mut canvas = vec![vec![' '; width]; height];
    for (a, b) in g.edges() {
        let (ra, ca, wa) = pos[a];
        let (rb, cb, wb) = pos[b];
        let (x0, y0) = ((ca + wa / 2) as f64, (ra + 3) as f64);
        let (x1, y1) = ((cb + wb / 2) as f64, rb as f64 - 1.0);
        let steps = ((y1 - y0).abs().max((x1 - x0).abs()) as usize).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = ((x0 + (x1 - x0) * t).round() as usize, (y0 + (y1 - y0) * t).round() as usize);
            if y < height && x < width {
                canvas[y][x] = '*';
            }
        }
    }
    for (i, &(r, c, w)) in pos.iter().enumerate() {
        let border: Vec<char> = format!("+{}+", "-".repeat(w - 2)).chars().collect();
        let label: Vec<char> = format!("| {} |", g.names[i]).chars().collect();
        for (dr, line) in [&border, &label, &border].into_iter().enumerate() {
            canvas[r + dr][c..c + w].copy_from_slice(line);
        }
    }
    let mut out = String::new();
    for row in canvas {
        let line: String = row.into_iter().collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
