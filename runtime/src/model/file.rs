//! The model file (docs/scoring.md §2): a logistic regression over named features of the
//! catalog ([`super::features`]) with their scaling, its decision threshold and its
//! training figures, as JSON with a format version and a checksum.
//!
//! The checksum is the SHA-256 of the file's JSON without it, keys sorted and without
//! spaces: a file changed by hand is refused, as is one of a later format version. The
//! `modelVersion` names the model by its parameters (features, scaling, coefficients,
//! intercept, threshold) and is what the `fraud_predictions` table records.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::features::{self, Feature};
use super::metrics::Confusion;

/// The `format` of every model file.
pub const FORMAT: &str = "tidelake-model";
/// The format version this tidelake writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// It cannot be read or written.
    #[error("model file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a tidelake model file, or a field is wrong.
    #[error("model file {path}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A later tidelake wrote it.
    #[error(
        "model file {path}: format version {found} is newer than this tidelake reads ({FORMAT_VERSION}); train the model again or upgrade tidelake"
    )]
    FutureVersion {
        /// The file.
        path: PathBuf,
        /// Its format version.
        found: u64,
    },
    /// Its contents are not those it was written with.
    #[error(
        "model file {path}: the checksum does not match its contents (the file was changed after training); train the model again"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
    },
}

/// The kind of model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ModelKind {
    /// `p = 1 / (1 + exp(−(intercept + Σ coefficient_j · (x_j − mean_j) / scale_j)))`.
    LogisticRegression,
}

/// A feature of the model and how it is scaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaledFeature {
    /// Its name in the catalog.
    pub name: String,
    /// Its value when what it reads is null (the catalog's).
    pub missing: f64,
    /// Subtracted before scaling: its mean in the training rows.
    pub mean: f64,
    /// Divided by: its standard deviation in the training rows (1 when that is 0).
    pub scale: f64,
}

/// A classifier's figures on labelled rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Figures {
    /// The confusion matrix.
    pub confusion: Confusion,
    /// Precision (null without a positive prediction).
    pub precision: Option<f64>,
    /// Recall (null without fraud).
    pub recall: Option<f64>,
    /// F1.
    pub f1: f64,
    /// ROC AUC of its scores (null unless both classes occur).
    pub roc_auc: Option<f64>,
}

/// The model at another threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AtThreshold {
    /// The threshold.
    pub threshold: f64,
    /// Its precision.
    pub precision: f64,
    /// Its recall.
    pub recall: f64,
}

/// How and on what the model was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Training {
    /// The table trained on.
    pub table: String,
    /// Its version.
    pub table_version: u64,
    /// When (RFC 3339).
    pub trained_at: String,
    /// Rows read, with and without a label.
    pub rows: u64,
    /// Rows trained on (labelled, before `held_out_from`).
    pub train_rows: u64,
    /// Labelled rows held out (at or after `held_out_from`).
    pub held_out_rows: u64,
    /// Rows held out from this event time on (RFC 3339).
    pub held_out_from: String,
    /// The L2 penalty.
    pub l2: f64,
    /// How the threshold was chosen (`--threshold 0.5`, `--target-precision 0.9`).
    pub threshold_from: String,
    /// The model's figures on the held-out rows at its threshold.
    pub model: Figures,
    /// The fraud rule's (`ruleAlert`) on the same rows.
    pub rule: Figures,
    /// The model at the threshold with the greatest held-out recall whose held-out
    /// precision is at least the rule's (none if there is none).
    pub model_at_rule_precision: Option<AtThreshold>,
}

/// A trained model; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Model {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Names the model by its parameters.
    pub model_version: String,
    /// The kind.
    pub kind: ModelKind,
    /// The features, in the order of `coefficients`.
    pub features: Vec<ScaledFeature>,
    /// One per feature, on scaled values.
    pub coefficients: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
    /// A transaction is predicted fraud when its probability is at least this.
    pub threshold: f64,
    /// How and on what it was trained.
    pub training: Training,
}

/// The parameters `modelVersion` is made from.
#[derive(Serialize)]
struct Parameters<'a> {
    kind: ModelKind,
    features: &'a [ScaledFeature],
    coefficients: &'a [f64],
    intercept: f64,
    threshold: f64,
}

impl Model {
    /// The version name of a model with these parameters: `lr-` and 12 hex digits of
    /// their SHA-256.
    pub fn version_of(
        features: &[ScaledFeature],
        coefficients: &[f64],
        intercept: f64,
        threshold: f64,
    ) -> String {
        let parameters = Parameters {
            kind: ModelKind::LogisticRegression,
            features,
            coefficients,
            intercept,
            threshold,
        };
        let json = serde_json::to_vec(&parameters).unwrap_or_default();
        format!("lr-{}", &hex(&Sha256::digest(&json))[..12])
    }

    /// The catalog's features of the model, in its order.
    pub fn catalog_features(&self) -> Vec<&'static Feature> {
        self.features
            .iter()
            .filter_map(|f| features::feature(&f.name))
            .collect()
    }

    /// Writes the model to `path` with its checksum.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let invalid = |detail: String| ModelError::Invalid {
            path: path.to_owned(),
            detail,
        };
        let mut value = serde_json::to_value(self).map_err(|e| invalid(e.to_string()))?;
        let checksum = checksum(&value);
        if let Value::Object(map) = &mut value {
            map.insert("checksum".to_owned(), Value::String(checksum));
        }
        let mut text = serde_json::to_string_pretty(&value).map_err(|e| invalid(e.to_string()))?;
        text.push('\n');
        std::fs::write(path, text).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads the model at `path`: refused if it is not a model file, is of a later
    /// format version, was changed after training, or is not one this tidelake can
    /// score (an unknown feature, a number out of range).
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let invalid = |detail: String| ModelError::Invalid {
            path: path.to_owned(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut value: Value =
            serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let Value::Object(map) = &mut value else {
            return Err(invalid("not a JSON object".into()));
        };
        if map.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(invalid(format!(
                "not a tidelake model (no \"format\": \"{FORMAT}\")"
            )));
        }
        match map.get("formatVersion").and_then(Value::as_u64) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(found) if found > u64::from(FORMAT_VERSION) => {
                return Err(ModelError::FutureVersion {
                    path: path.to_owned(),
                    found,
                });
            }
            other => return Err(invalid(format!("unknown formatVersion {other:?}"))),
        }
        let Some(Value::String(stated)) = map.remove("checksum") else {
            return Err(invalid("no checksum".into()));
        };
        if stated != checksum(&value) {
            return Err(ModelError::Checksum {
                path: path.to_owned(),
            });
        }
        let model: Model = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        model.check().map_err(invalid)?;
        Ok(model)
    }

    /// Whether this tidelake can score with the model.
    fn check(&self) -> Result<(), String> {
        if self.coefficients.len() != self.features.len() {
            return Err(format!(
                "{} coefficients for {} features",
                self.coefficients.len(),
                self.features.len()
            ));
        }
        let unknown: Vec<&str> = self
            .features
            .iter()
            .filter(|f| features::feature(&f.name).is_none())
            .map(|f| f.name.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "features this tidelake does not compute: {}",
                unknown.join(", ")
            ));
        }
        for (f, catalog) in self.features.iter().zip(self.catalog_features()) {
            if f.missing.to_bits() != catalog.missing.to_bits() {
                return Err(format!(
                    "feature {}: its missing value {} is not this tidelake's {}",
                    f.name, f.missing, catalog.missing
                ));
            }
            if !(f.mean.is_finite() && f.scale.is_finite() && f.scale > 0.0) {
                return Err(format!("feature {}: mean or scale out of range", f.name));
            }
        }
        if !self.coefficients.iter().all(|c| c.is_finite()) || !self.intercept.is_finite() {
            return Err("a coefficient or the intercept is not finite".into());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("threshold {} is not in [0, 1]", self.threshold));
        }
        let version = Model::version_of(
            &self.features,
            &self.coefficients,
            self.intercept,
            self.threshold,
        );
        if self.model_version != version {
            return Err(format!(
                "modelVersion {} is not its parameters' ({version})",
                self.model_version
            ));
        }
        Ok(())
    }

    /// The model's probabilities of fraud for rows given by their feature values, one
    /// column per feature in the model's order: the logistic function of each row's
    /// scaled values' linear combination, summed from the intercept in feature order —
    /// the one computation training and scoring share, so a row's probability does not
    /// depend on how rows are batched.
    pub fn probabilities(&self, columns: &[Vec<f64>]) -> Vec<f64> {
        let rows = columns.first().map_or(0, Vec::len);
        let mut z = vec![self.intercept; rows];
        let scaling = self.features.iter().zip(&self.coefficients);
        for (column, (f, w)) in columns.iter().zip(scaling) {
            for (z, x) in z.iter_mut().zip(column) {
                *z += w * ((x - f.mean) / f.scale);
            }
        }
        z.into_iter().map(sigmoid).collect()
    }
}

/// The logistic function, without overflow for either sign.
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The checksum of a model file's JSON without its checksum field.
fn checksum(value: &Value) -> String {
    // serde_json's maps are sorted by key: the compact text is canonical.
    let text = serde_json::to_vec(value).unwrap_or_default();
    format!("sha256:{}", hex(&Sha256::digest(&text)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let features: Vec<ScaledFeature> = ["logAmount", "logSecondsSincePrev"]
            .iter()
            .map(|name| ScaledFeature {
                name: (*name).to_owned(),
                missing: features::feature(name).map_or(0.0, |f| f.missing),
                mean: 1.5,
                scale: 0.25,
            })
            .collect();
        let coefficients = vec![0.75, -1.25];
        Model {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            model_version: Model::version_of(&features, &coefficients, -3.0, 0.5),
            kind: ModelKind::LogisticRegression,
            features,
            coefficients,
            intercept: -3.0,
            threshold: 0.5,
            training: Training {
                table: "t".into(),
                table_version: 3,
                trained_at: "2026-12-06T00:00:00Z".into(),
                rows: 10,
                train_rows: 8,
                held_out_rows: 2,
                held_out_from: "2024-05-01T00:00:00Z".into(),
                l2: 1.0,
                threshold_from: "--threshold 0.5".into(),
                model: Figures::default(),
                rule: Figures::default(),
                model_at_rule_precision: None,
            },
        }
    }

    #[test]
    fn round_trips_and_refuses_changed_or_future_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.json");
        let m = model();
        m.save(&path).expect("save");
        assert_eq!(Model::load(&path).expect("load"), m);

        let text = std::fs::read_to_string(&path).expect("read");
        let tampered = text.replacen("0.75", "0.76", 1);
        std::fs::write(&path, tampered).expect("write");
        let e = Model::load(&path).expect_err("tampered");
        assert!(matches!(e, ModelError::Checksum { .. }), "{e}");

        let future = text.replacen("\"formatVersion\": 1", "\"formatVersion\": 2", 1);
        std::fs::write(&path, future).expect("write");
        let e = Model::load(&path).expect_err("future");
        assert!(
            matches!(e, ModelError::FutureVersion { found: 2, .. }),
            "{e}"
        );
    }

    #[test]
    fn probabilities_scale_in_feature_order() {
        let m = model();
        let p = m.probabilities(&[vec![2.0, 1.5], vec![1.0, 1.5]]);
        assert_eq!(
            p,
            [
                sigmoid(-3.0 + 0.75 * ((2.0 - 1.5) / 0.25) + -1.25 * ((1.0 - 1.5) / 0.25)),
                sigmoid(-3.0)
            ]
        );
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(-800.0)).abs() < 1e-300 && sigmoid(800.0) == 1.0);
    }
}
