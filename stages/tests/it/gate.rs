//! promote's gate on evidence, case by case, on outcomes built by hand (no model needed): a
//! candidate better only in how sure it is, where both models are right on every sample, is
//! promoted; one that is no better, less accurate, worse on a class, worse in base test
//! Brier score, or further below the line's origin on the base test than its margin is
//! refused, and each reason carries its numbers. The line's origin is what the serving sidecar
//! carries, or the serving model itself when no promotion made it.

use gitops::model_file::ModelFile;
use model::Evaluation;
use model::eval::Outcome;
use stages::evaluate::{Comparison, EvaluateParams, Evidence, Scores, paired};
use stages::promote::{ORIGIN_METRIC, PromoteParams, judge, origin_of_serving};

/// One model's outcomes on the three sets.
struct Side {
    base_test: Vec<Outcome>,
    feedback: Vec<Outcome>,
}

fn outcome(label: usize, predicted: usize, p_true: f32) -> Outcome {
    Outcome {
        predicted,
        correct: label == predicted,
        p_true,
        confidence: p_true.max(1.0 - p_true),
        brier: 2.0 * (1.0 - p_true).powi(2),
    }
}

/// 100 base test samples, ten of each digit, every one right at `p_true`.
fn base(p_true: f32) -> Vec<Outcome> {
    (0..100).map(|i| outcome(i % 10, i % 10, p_true)).collect()
}

/// 20 held-back feedback samples, every one right at `p_true`.
fn feedback(p_true: f32) -> Vec<Outcome> {
    (0..20).map(|i| outcome(i % 10, i % 10, p_true)).collect()
}

fn labels(n: usize) -> Vec<usize> {
    (0..n).map(|i| i % 10).collect()
}

fn scores(side: &Side) -> Scores {
    let evaluation =
        |o: &[Outcome]| Evaluation::from_pairs(10, labels(o.len()).into_iter().zip(o.iter().map(|o| o.predicted)));
    Scores {
        base_test: evaluation(&side.base_test),
        feedback: (!side.feedback.is_empty()).then(|| evaluation(&side.feedback)),
        earlier_feedback: None,
    }
}

fn comparison(candidate: &Side, serving: &Side) -> Comparison {
    let settings = EvaluateParams::default();
    Comparison {
        candidate_version: "model_candidate".into(),
        serving_version: "model_serving".into(),
        classes: (0..10).map(|d| d.to_string()).collect(),
        candidate_reference: None,
        candidate: scores(candidate),
        serving: scores(serving),
        evidence: Evidence {
            base_test: paired::compare(&candidate.base_test, &serving.base_test, &settings),
            feedback: (!candidate.feedback.is_empty())
                .then(|| paired::compare(&candidate.feedback, &serving.feedback, &settings)),
            earlier_feedback: None,
        },
    }
}

/// Judges `candidate` against `serving` with the default thresholds, serving being the line's
/// origin; checks the verdict and that some reason contains each of `reasons`.
fn check(case: &str, candidate: Side, serving: Side, promoted: bool, reasons: &[&str]) {
    let origin = scores(&serving).base_test.accuracy;
    check_in_line(case, candidate, serving, origin, promoted, reasons);
}

/// [`check`] for a serving model that promotions made from an origin of base test accuracy
/// `origin`.
fn check_in_line(case: &str, candidate: Side, serving: Side, origin: f64, promoted: bool, reasons: &[&str]) {
    let (verdict, given) = judge(&comparison(&candidate, &serving), origin, &PromoteParams::default());
    assert_eq!(verdict, promoted, "{case}: reasons {given:#?}");
    for want in reasons {
        assert!(given.iter().any(|r| r.contains(want)), "{case}: no reason contains {want:?} in {given:#?}");
    }
}

#[test]
fn the_gate_decides_on_paired_evidence() {
    let serving = || Side { base_test: base(0.95), feedback: feedback(0.7) };
    check(
        "both right on every sample, the candidate surer on feedback",
        Side { base_test: base(0.95), feedback: feedback(0.9) },
        serving(),
        true,
        &[
            "the bound is below 0, the candidate is better",
            "McNemar: 0 right only by the candidate, 0 only by serving, p = 1.000",
        ],
    );
    check(
        "both right on every sample, the candidate less sure on feedback",
        Side { base_test: base(0.95), feedback: feedback(0.6) },
        serving(),
        false,
        &["no evidence the candidate is better"],
    );
    // What the drift benchmark showed: two samples turned right carry the mean, the bootstrap
    // bound stays above 0 (resamples without them), but the candidate is better on 18 of 20.
    let (mut turned, mut before) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let label = i % 10;
        let (c, s) = match i {
            0 | 1 => (outcome(label, label, 0.97), outcome(label, (label + 1) % 10, 0.1)),
            2 | 3 => (outcome(label, label, 0.89), outcome(label, label, 0.97)),
            _ => (outcome(label, label, 0.985), outcome(label, label, 0.97)),
        };
        turned.push(c);
        before.push(s);
    }
    check(
        "two turned right carry the mean; better on 18 of 20",
        Side { base_test: base(0.95), feedback: turned },
        Side { base_test: base(0.95), feedback: before },
        true,
        &["better on 18 samples, worse on 2", "the sign test shows the candidate is better"],
    );
    check(
        "no held-back feedback",
        Side { base_test: base(0.95), feedback: Vec::new() },
        Side { base_test: base(0.95), feedback: Vec::new() },
        false,
        &["no held-back feedback yet"],
    );
    // Better on feedback, but every 3 of the base test set now reads as an 8.
    let mut worse_on_three = base(0.95);
    for (i, o) in worse_on_three.iter_mut().enumerate().filter(|(i, _)| i % 10 == 3) {
        *o = outcome(i % 10, 8, 0.3);
    }
    check(
        "better on feedback, worse on one class",
        Side { base_test: worse_on_three, feedback: feedback(0.9) },
        serving(),
        false,
        &["recall of class 3 drops 100.00 points", "base test Brier"],
    );
    check(
        "better on feedback, right everywhere but much less sure on the base test",
        Side { base_test: base(0.6), feedback: feedback(0.9) },
        serving(),
        false,
        &["exceeds the allowed +0.0200"],
    );
    // Surer where it is right, but wrong on 8 of the 20 where serving is right.
    let mut less_accurate = feedback(0.999);
    for (i, o) in less_accurate.iter_mut().enumerate().take(8) {
        *o = outcome(i % 10, (i + 1) % 10, 0.45);
    }
    check(
        "surer on average but less accurate on feedback",
        Side { base_test: base(0.95), feedback: less_accurate },
        Side { base_test: base(0.95), feedback: feedback(0.5) },
        false,
        &["the candidate is less accurate"],
    );
    // Small steps cannot add up to a slide. Serving and candidate read the base test alike
    // (two mistakes in 100), so the serving margin is met; the line's origin read all 100.
    let two_wrong = || {
        let mut outcomes = base(0.95);
        outcomes[0] = outcome(0, 1, 0.3);
        outcomes[1] = outcome(1, 2, 0.3);
        outcomes
    };
    let in_line = || Side { base_test: two_wrong(), feedback: feedback(0.7) };
    check_in_line(
        "level with serving, two points below the line's origin",
        Side { base_test: two_wrong(), feedback: feedback(0.9) },
        in_line(),
        1.0,
        false,
        &[
            "drop 0.00 points within the allowed 1.00",
            "98.00% vs 100.00% of the line's origin (the model before its first promotion): drop 2.00 points exceeds the allowed 1.00",
        ],
    );
    check_in_line(
        "level with serving, half a point below the line's origin",
        Side { base_test: two_wrong(), feedback: feedback(0.9) },
        in_line(),
        0.985,
        true,
        &[
            "98.00% vs 98.50% of the line's origin (the model before its first promotion): drop 0.50 points within the allowed 1.00",
        ],
    );
}

#[test]
fn the_line_origin_comes_from_the_serving_sidecar_or_from_serving_itself() {
    let workspace = testkit::workspace_root().join("models");
    let sidecar = ModelFile::list(&workspace).unwrap()[0].read_sidecar().unwrap();
    let models = tempfile::tempdir().unwrap();
    // A base model: no promotion made it, so it is its line's origin.
    let origin = ModelFile::new(models.path(), "model_20260101T000000Z").unwrap();
    origin.write_sidecar(&sidecar).unwrap();
    // A promoted model carries its line's origin in its metrics.
    let promoted = ModelFile::new(models.path(), "model_20260102T000000Z").unwrap();
    let mut carried = sidecar.clone();
    carried.metrics.insert(ORIGIN_METRIC.to_string(), 0.97);
    promoted.write_sidecar(&carried).unwrap();

    let side = || Side { base_test: base(0.9), feedback: feedback(0.9) };
    let mut c = comparison(&side(), &side());
    c.serving_version = origin.version.clone();
    assert_eq!(origin_of_serving(models.path(), &c).unwrap(), c.serving.base_test.accuracy);
    c.serving_version = promoted.version.clone();
    assert_eq!(origin_of_serving(models.path(), &c).unwrap(), 0.97);
}
