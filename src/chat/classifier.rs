//! A multinomial logistic regression learnt from the catalog when it loads, with its
//! probabilities calibrated on folds of the catalog: a class's probability is what share of
//! unseen catalog examples it got right at that confidence, so the chat's thresholds mean
//! probabilities rather than scores.
//!
//! Trained by stochastic gradient descent with L2 regularisation (the weight-scaling trick
//! keeps each step proportional to the message's few features, not to the whole model), in a
//! fixed order, so the same catalog always gives the same model.

use super::features::SparseVec;

#[derive(Clone, Copy, Debug)]
pub struct TrainOptions {
    pub epochs: usize,
    /// L2 regularisation per example.
    pub lambda: f32,
    /// Learning rate of the first step.
    pub eta0: f32,
    pub folds: usize,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 20,
            lambda: 3e-5,
            eta0: 0.5,
            folds: 4,
            seed: 0x05ee_d0f7_a11e,
        }
    }
}

/// Weights feature-major (the `classes` weights of one feature are contiguous), so scoring a
/// message touches only the rows of its features.
#[derive(Clone, Debug)]
pub struct LinearModel {
    classes: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
    /// Softmax temperature fitted on held-out folds.
    temperature: f32,
}

/// How the model did on folds of the catalog it never saw while training (for `intents check`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FoldReport {
    pub examples: usize,
    pub accuracy: f32,
    pub temperature: f32,
}

/// A small deterministic generator (xorshift64*): training order must not depend on chance.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

fn softmax_in_place(z: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    if sum > 0.0 {
        for v in z.iter_mut() {
            *v /= sum;
        }
    }
}

impl LinearModel {
    fn zeros(features: usize, classes: usize) -> Self {
        Self {
            classes,
            weights: vec![0.0; features * classes],
            bias: vec![0.0; classes],
            temperature: 1.0,
        }
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Raw scores (logits) of every class.
    pub fn logits(&self, x: &SparseVec) -> Vec<f32> {
        let k = self.classes;
        let mut z = self.bias.clone();
        for &(j, v) in x {
            let row = &self.weights[j as usize * k..(j as usize + 1) * k];
            for (zc, w) in z.iter_mut().zip(row) {
                *zc += w * v;
            }
        }
        z
    }

    /// Calibrated class probabilities.
    pub fn probabilities(&self, x: &SparseVec) -> Vec<f32> {
        let mut z = self.logits(x);
        for v in z.iter_mut() {
            *v /= self.temperature;
        }
        softmax_in_place(&mut z);
        z
    }

    fn fit(
        xs: &[&SparseVec],
        ys: &[usize],
        features: usize,
        classes: usize,
        opt: &TrainOptions,
        rng: &mut Rng,
    ) -> Self {
        let mut m = Self::zeros(features, classes);
        let mut order: Vec<usize> = (0..xs.len()).collect();
        // Learning rate 1 / (lambda (t + t0)), with t0 chosen so the first step is eta0.
        let t0 = 1.0 / (opt.lambda * opt.eta0);
        let mut scale = 1.0f32;
        let mut t = 0.0f32;
        let mut z = vec![0.0f32; classes];
        for _ in 0..opt.epochs {
            rng.shuffle(&mut order);
            for &i in &order {
                let eta = 1.0 / (opt.lambda * (t + t0));
                t += 1.0;
                scale *= 1.0 - eta * opt.lambda;
                z.copy_from_slice(&m.bias);
                for &(j, v) in xs[i] {
                    let row = &m.weights[j as usize * classes..(j as usize + 1) * classes];
                    for (zc, w) in z.iter_mut().zip(row) {
                        *zc += w * v * scale;
                    }
                }
                softmax_in_place(&mut z);
                z[ys[i]] -= 1.0;
                for (b, g) in m.bias.iter_mut().zip(&z) {
                    *b -= eta * g;
                }
                for &(j, v) in xs[i] {
                    let step = eta * v / scale;
                    let row = &mut m.weights[j as usize * classes..(j as usize + 1) * classes];
                    for (w, g) in row.iter_mut().zip(&z) {
                        *w -= step * g;
                    }
                }
                if scale < 1e-4 {
                    for w in m.weights.iter_mut() {
                        *w *= scale;
                    }
                    scale = 1.0;
                }
            }
        }
        for w in m.weights.iter_mut() {
            *w *= scale;
        }
        m
    }

    /// Trains on every example, after fitting the temperature on `folds` held-out folds.
    pub fn train(
        xs: &[SparseVec],
        ys: &[usize],
        features: usize,
        classes: usize,
        opt: &TrainOptions,
    ) -> (Self, FoldReport) {
        let mut rng = Rng(opt.seed | 1);
        let mut order: Vec<usize> = (0..xs.len()).collect();
        rng.shuffle(&mut order);
        let mut held_out: Vec<(Vec<f32>, usize)> = Vec::with_capacity(xs.len());
        if opt.folds >= 2 {
            for f in 0..opt.folds {
                let (mut tx, mut ty) = (Vec::new(), Vec::new());
                let mut test = Vec::new();
                for (pos, &i) in order.iter().enumerate() {
                    if pos % opt.folds == f {
                        test.push(i);
                    } else {
                        tx.push(&xs[i]);
                        ty.push(ys[i]);
                    }
                }
                let m = Self::fit(&tx, &ty, features, classes, opt, &mut rng);
                held_out.extend(test.into_iter().map(|i| (m.logits(&xs[i]), ys[i])));
            }
        }
        let temperature = fit_temperature(&held_out);
        let right = held_out
            .iter()
            .filter(|(z, y)| argmax(z) == Some(*y))
            .count();
        let all: Vec<&SparseVec> = xs.iter().collect();
        let mut model = Self::fit(&all, ys, features, classes, opt, &mut rng);
        model.temperature = temperature;
        let report = FoldReport {
            examples: held_out.len(),
            accuracy: if held_out.is_empty() {
                0.0
            } else {
                right as f32 / held_out.len() as f32
            },
            temperature,
        };
        (model, report)
    }
}

fn argmax(z: &[f32]) -> Option<usize> {
    z.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

/// Negative log-likelihood of the held-out labels at temperature `t`.
fn nll(held_out: &[(Vec<f32>, usize)], t: f32) -> f32 {
    let mut total = 0.0;
    let mut z = Vec::new();
    for (logits, y) in held_out {
        z.clear();
        z.extend(logits.iter().map(|v| v / t));
        softmax_in_place(&mut z);
        total -= z[*y].max(1e-9).ln();
    }
    total
}

/// The temperature that makes held-out probabilities honest (golden-section search on its
/// logarithm; the likelihood is unimodal in it).
fn fit_temperature(held_out: &[(Vec<f32>, usize)]) -> f32 {
    if held_out.is_empty() {
        return 1.0;
    }
    let (mut lo, mut hi) = ((0.02f32).ln(), (20.0f32).ln());
    let g = 0.618_034f32;
    let f = |x: f32| nll(held_out, x.exp());
    let mut a = hi - g * (hi - lo);
    let mut b = lo + g * (hi - lo);
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..40 {
        if fa < fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - g * (hi - lo);
            fa = f(a);
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + g * (hi - lo);
            fb = f(b);
        }
    }
    ((lo + hi) / 2.0).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two separable classes of one-hot examples, plus noise features.
    fn toy() -> (Vec<SparseVec>, Vec<usize>) {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..40u32 {
            let class = (i % 2) as usize;
            xs.push(vec![(class as u32, 0.8), (2 + i % 5, 0.6)]);
            ys.push(class);
        }
        (xs, ys)
    }

    #[test]
    fn learns_separable_classes_with_confident_probabilities() {
        let (xs, ys) = toy();
        let (m, report) = LinearModel::train(&xs, &ys, 8, 2, &TrainOptions::default());
        assert!(report.accuracy > 0.95, "{report:?}");
        let p = m.probabilities(&vec![(0, 1.0)]);
        assert!(p[0] > 0.8, "{p:?}");
        let p = m.probabilities(&vec![(1, 1.0)]);
        assert!(p[1] > 0.8, "{p:?}");
        // A message with only uninformative features gets no strong opinion.
        let p = m.probabilities(&vec![(3, 1.0)]);
        assert!(p[0] < 0.7 && p[1] < 0.7, "{p:?}");
    }

    #[test]
    fn training_is_deterministic() {
        let (xs, ys) = toy();
        let (a, _) = LinearModel::train(&xs, &ys, 8, 2, &TrainOptions::default());
        let (b, _) = LinearModel::train(&xs, &ys, 8, 2, &TrainOptions::default());
        assert_eq!(a.weights, b.weights);
    }

    #[test]
    fn temperature_softens_overconfident_scores() {
        // Logits that are confidently wrong half of the time call for a high temperature.
        let held_out: Vec<(Vec<f32>, usize)> = (0..20)
            .map(|i| (vec![5.0, 0.0], if i % 2 == 0 { 0 } else { 1 }))
            .collect();
        assert!(fit_temperature(&held_out) > 3.0);
        let sure: Vec<(Vec<f32>, usize)> = (0..20).map(|_| (vec![1.0, 0.0], 0)).collect();
        assert!(fit_temperature(&sure) < 0.2);
    }
}
