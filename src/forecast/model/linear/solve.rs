//! The solver: weighted ridge regression by Cholesky, and iteratively reweighted least
//! squares for the L1 (median) and pinball (quantile) losses.

use super::Loss;

/// Solves the symmetric positive definite system `a x = b` (row-major `n × n`) in place by
/// Cholesky; adds a small ridge to the diagonal if the matrix is not positive definite.
fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let trace = (0..n).map(|i| a[i * n + i].abs()).sum::<f64>() / n.max(1) as f64;
    let mut jitter = 0.0;
    for _ in 0..8 {
        let mut l = a.to_vec();
        for i in 0..n {
            l[i * n + i] += jitter;
        }
        let mut ok = true;
        'outer: for j in 0..n {
            let mut d = l[j * n + j];
            for k in 0..j {
                d -= l[j * n + k] * l[j * n + k];
            }
            if d <= 1e-12 * trace.max(1e-300) || !d.is_finite() {
                ok = false;
                break 'outer;
            }
            let d = d.sqrt();
            l[j * n + j] = d;
            for i in j + 1..n {
                let mut s = l[i * n + j];
                for k in 0..j {
                    s -= l[i * n + k] * l[j * n + k];
                }
                l[i * n + j] = s / d;
            }
        }
        if ok {
            let mut x = b.to_vec();
            for i in 0..n {
                let mut s = x[i];
                for k in 0..i {
                    s -= l[i * n + k] * x[k];
                }
                x[i] = s / l[i * n + i];
            }
            for i in (0..n).rev() {
                let mut s = x[i];
                for k in i + 1..n {
                    s -= l[k * n + i] * x[k];
                }
                x[i] = s / l[i * n + i];
            }
            return x;
        }
        jitter = if jitter == 0.0 {
            1e-10 * trace.max(1e-12)
        } else {
            jitter * 100.0
        };
    }
    vec![0.0; n]
}

/// A standardised design: column 0 is the intercept, then a target's features; row-major.
pub(super) struct Columns {
    pub(super) a: Vec<f64>,
    pub(super) width: usize,
}

/// Weighted ridge fit: minimises `Σ c_r (y_r − a_r·w)² + penalty · n · |w[1..]|²`.
fn weighted_ridge(cols: &Columns, y: &[f64], weights: Option<&[f64]>, penalty: f64) -> Vec<f64> {
    let k = cols.width;
    let n = y.len();
    let mut gram = vec![0.0; k * k];
    let mut rhs = vec![0.0; k];
    for (r, &yr) in y.iter().enumerate() {
        let row = &cols.a[r * k..(r + 1) * k];
        let c = weights.map_or(1.0, |w| w[r]);
        for i in 0..k {
            let ci = c * row[i];
            rhs[i] += ci * yr;
            let g = &mut gram[i * k..(i + 1) * k];
            for j in i..k {
                g[j] += ci * row[j];
            }
        }
    }
    for i in 0..k {
        for j in 0..i {
            gram[i * k + j] = gram[j * k + i];
        }
        if i > 0 {
            gram[i * k + i] += penalty * n as f64;
        }
    }
    solve_spd(&gram, &rhs, k)
}

/// The fitted values of every row of `cols` for weights `w`.
pub(super) fn predict_rows(cols: &Columns, w: &[f64]) -> Vec<f64> {
    cols.a
        .chunks_exact(cols.width)
        .map(|row| row.iter().zip(w).map(|(a, b)| a * b).sum())
        .collect()
}

/// Fits one target with the options' loss.
pub(super) fn fit_target(
    cols: &Columns,
    y: &[f64],
    penalty: f64,
    loss: Loss,
    tau: Option<f64>,
) -> Vec<f64> {
    let mut w = weighted_ridge(cols, y, None, penalty);
    if loss != Loss::Squared && !y.is_empty() {
        let spread = y.iter().map(|v| v.abs()).sum::<f64>() / y.len() as f64;
        // Relative to the targets' size, so the fit is the same in any unit; 1 when they
        // are all 0 (or so small the floor is not a normal number).
        let floor = Some(spread * 0.02).filter(|f| f.is_normal()).unwrap_or(1.0);
        for _ in 0..8 {
            let fitted = predict_rows(cols, &w);
            let mut c: Vec<f64> = y
                .iter()
                .zip(&fitted)
                .map(|(a, b)| {
                    // Pinball loss as weighted squares: residuals above the fit weigh τ,
                    // below 1 − τ (both ½ for the median).
                    let side = tau.map_or(0.5, |t| if a > b { t } else { 1.0 - t });
                    side / (a - b).abs().max(floor)
                })
                .collect();
            let mean_c = c.iter().sum::<f64>() / c.len() as f64;
            c.iter_mut().for_each(|v| *v /= mean_c);
            w = weighted_ridge(cols, y, Some(&c), penalty);
        }
    }
    w
}
