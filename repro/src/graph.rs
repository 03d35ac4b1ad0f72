//! The stage DAG: an edge runs from a stage to every stage producing one of its
//! dependencies (a dependency inside an output directory, or containing an output, counts).
//! Duplicate or nested outputs and cycles are errors naming the stages involved.
//! Execution order is networkx's `dfs_postorder_nodes`, as `dvc repro` uses.

use crate::dvcyaml::Stage;
use crate::error::{Error, Result};
use crate::fsutil::{is_within, normalize};

/// Stages by index with their dependency edges (`deps[i]`: the stages `i` depends on).
#[derive(Debug)]
pub struct Graph {
    pub names: Vec<String>,
    deps: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    /// Frozen stages do not pull in their upstream when planning (DVC's "active graph").
    frozen: Vec<bool>,
}

impl Graph {
    /// Builds and checks the DAG of `stages`.
    pub fn build(stages: &[Stage]) -> Result<Graph> {
        let outs: Vec<(usize, String)> = stages
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.outs.iter().map(move |o| (i, normalize(&s.wdir, &o.path))))
            .collect();
        for (a, (sa, pa)) in outs.iter().enumerate() {
            for (sb, pb) in &outs[a + 1..] {
                let (na, nb) = (stages[*sa].name.clone(), stages[*sb].name.clone());
                if pa == pb {
                    return Err(Error::DuplicateOutput { path: pa.clone(), first: na, second: nb });
                }
                let overlap = |outer: &String, os: String, inner: &String, is: String| Error::OverlappingOutputs {
                    outer: outer.clone(),
                    outer_stage: os,
                    inner: inner.clone(),
                    inner_stage: is,
                };
                if is_within(pb, pa) {
                    return Err(overlap(pa, na, pb, nb));
                }
                if is_within(pa, pb) {
                    return Err(overlap(pb, nb, pa, na));
                }
            }
        }
        let n = stages.len();
        let mut deps = vec![Vec::new(); n];
        let mut dependents = vec![Vec::new(); n];
        for (i, s) in stages.iter().enumerate() {
            let paths = s.deps.iter().map(|d| &d.path).chain(s.params.iter().map(|p| &p.file));
            for dep in paths.map(|d| normalize(&s.wdir, d)) {
                let mut containing: Vec<&(usize, String)> = outs.iter().filter(|(_, o)| is_within(&dep, o)).collect();
                containing.sort_by_key(|(_, o)| o.len());
                let mut inside: Vec<&(usize, String)> =
                    outs.iter().filter(|(_, o)| is_within(o, &dep) && *o != dep).collect();
                inside.sort_by(|a, b| a.1.cmp(&b.1));
                for (j, _) in containing.into_iter().chain(inside) {
                    if !deps[i].contains(j) {
                        deps[i].push(*j);
                        dependents[*j].push(i);
                    }
                }
            }
        }
        let frozen = stages.iter().map(|s| s.frozen).collect();
        let g = Graph { names: stages.iter().map(|s| s.name.clone()).collect(), deps, dependents, frozen };
        g.check_acyclic()?;
        Ok(g)
    }

    fn check_acyclic(&self) -> Result<()> {
        // 0 = unvisited, 1 = on the stack, 2 = done
        let mut color = vec![0u8; self.names.len()];
        let mut stack: Vec<usize> = Vec::new();
        fn visit(g: &Graph, v: usize, color: &mut [u8], stack: &mut Vec<usize>) -> Option<Vec<usize>> {
            color[v] = 1;
            stack.push(v);
            for &w in &g.deps[v] {
                if color[w] == 1 {
                    let pos = stack.iter().position(|&x| x == w).expect("on stack");
                    return Some(stack[pos..].to_vec());
                }
                if color[w] == 0
                    && let Some(c) = visit(g, w, color, stack)
                {
                    return Some(c);
                }
            }
            stack.pop();
            color[v] = 2;
            None
        }
        for v in 0..self.names.len() {
            if color[v] == 0
                && let Some(cycle) = visit(self, v, &mut color, &mut stack)
            {
                let mut names: Vec<&str> = cycle.iter().map(|&i| self.names[i].as_str()).collect();
                names.sort_unstable();
                return Err(Error::Cycle(names.join(", ")));
            }
        }
        Ok(())
    }

    /// The stages `i` depends on directly.
    pub fn upstream(&self, i: usize) -> &[usize] {
        &self.deps[i]
    }

    fn postorder(&self, starts: impl Iterator<Item = usize>, reverse: bool, allowed: &[bool]) -> Vec<usize> {
        let mut seen = vec![false; self.names.len()];
        let mut order = Vec::new();
        for start in starts {
            if seen[start] || !allowed[start] {
                continue;
            }
            seen[start] = true;
            let mut stack = vec![(start, 0usize)];
            while let Some((v, idx)) = stack.last_mut() {
                let next = if reverse { &self.dependents[*v] } else { &self.deps[*v] };
                if let Some(&w) = next.get(*idx) {
                    *idx += 1;
                    let active = if reverse { !self.frozen[w] } else { !self.frozen[*v] };
                    if active && !seen[w] && allowed[w] {
                        seen[w] = true;
                        stack.push((w, 0));
                    }
                } else {
                    order.push(*v);
                    stack.pop();
                }
            }
        }
        order
    }

    /// The stages to visit, in order, for targets (all stages when empty), like `dvc repro`.
    pub fn plan(&self, targets: &[usize], downstream: bool, single_item: bool) -> Vec<usize> {
        if single_item && !targets.is_empty() {
            let mut out = Vec::new();
            for &t in targets {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            return out;
        }
        let all = vec![true; self.names.len()];
        let allowed = if targets.is_empty() {
            all
        } else {
            let mut allowed = vec![false; self.names.len()];
            for &t in targets {
                for v in self.postorder(std::iter::once(t), downstream, &all) {
                    allowed[v] = true;
                }
            }
            allowed
        };
        self.postorder(0..self.names.len(), false, &allowed)
    }

    /// Edges as (upstream, downstream) pairs, in stage order.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        let mut e = Vec::new();
        for (i, ds) in self.deps.iter().enumerate() {
            for &d in ds {
                e.push((d, i));
            }
        }
        e
    }
}
