//! Account profiles of generated data: each account's home country, typical spend,
//! birth year, credit limit and opening time, and the later changes of its reference
//! data (a new credit limit, a moved home country), deterministic from a seed
//! (docs/semantics.md §4, "Account profiles").
//!
//! A profile depends only on the seed and the account index: any worker, partition or
//! process computes the same profile of any account without coordination, so the
//! reference data `tidelake generate accounts` writes and the transactions generated for
//! the same seed agree.
//!
//! - **Home country**: one of [`COUNTRIES`], weighted (the first ones more often).
//! - **Typical spend**: `5 × 40^u` for `u` uniform in `[0, 1)`, rounded to cents
//!   (5.00 to 200.00, log-uniform).
//! - **Credit limit**: the typical spend × 20 to 100, rounded up to a multiple of 500,
//!   at least 500.
//! - **Birth year**: uniform in 1940..=2005. **Opened at**: a whole second between 30
//!   days and 10 years before `start_ms`.
//! - **Changes**: with probability `update_share` an account changes once at a whole
//!   second uniform in `[start_ms, start_ms + span_ms)`, and with a fifth of that
//!   probability once more, later in the span: half of the changes set a new credit
//!   limit (×1.5 or ×0.5, rounded to a multiple of 500, at least 500), half move the
//!   home country to another one.

use compact_str::CompactString;
use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::sources::generator::mix;

/// The home countries of generated accounts (ISO 3166 alpha-2), most frequent first.
pub const COUNTRIES: [&str; 12] = [
    "US", "GB", "DE", "FR", "NL", "ES", "IT", "PL", "SE", "BR", "IN", "JP",
];

/// Relative weights of [`COUNTRIES`].
const COUNTRY_WEIGHTS: [u64; 12] = [30, 15, 12, 10, 6, 6, 5, 4, 3, 3, 3, 3];

const DAY_MS: u64 = 86_400_000;

/// What profiles are drawn from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProfileConfig {
    /// The seed (the generator's `--seed`).
    pub seed: u64,
    /// Accounts `"0"` to `accounts − 1`.
    pub accounts: u64,
    /// The start of the generated data's event time, ms since the epoch.
    pub start_ms: u64,
    /// How long the generated data's event time lasts: changes fall in it.
    pub span_ms: u64,
    /// The share of accounts whose reference data change during the span.
    pub update_share: f64,
}

/// One version of an account's reference data: a row of the `accounts` table.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountVersion {
    /// The account id (its index in decimal, as the generator names accounts).
    pub account_id: CompactString,
    /// ISO 3166 alpha-2.
    pub home_country: &'static str,
    /// The holder's year of birth.
    pub birth_year: u16,
    /// The credit limit, whole units.
    pub credit_limit: u64,
    /// When the account was opened, ms since the epoch.
    pub opened_at: u64,
    /// From when this version holds, ms since the epoch (`opened_at` for the first).
    pub valid_from: u64,
}

/// An account's profile: its first version and how it spends.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// The reference data valid from the account's opening.
    pub first: AccountVersion,
    /// The account's typical amount.
    pub typical_spend: f64,
}

impl Profile {
    /// The profile of account `account` (see the [module docs](self)).
    pub fn of(config: &ProfileConfig, account: u64) -> Profile {
        let mut rng = rng(config.seed, account);
        let home_country = weighted_country(&mut rng, None);
        let typical_cents = (500.0 * 40f64.powf(unit(&mut rng))).round();
        let credit_limit = round_limit(typical_cents / 100.0 * (20.0 + 80.0 * unit(&mut rng)));
        let birth_year = 1940 + (rng.next_u64() % 66) as u16;
        let age_ms = 30 * DAY_MS + rng.next_u64() % (3_620 * DAY_MS);
        let opened_at = config.start_ms.saturating_sub(age_ms) / 1000 * 1000;
        Profile {
            first: AccountVersion {
                account_id: compact_str::format_compact!("{account}"),
                home_country,
                birth_year,
                credit_limit,
                opened_at,
                valid_from: opened_at,
            },
            typical_spend: typical_cents / 100.0,
        }
    }

    /// Every version of the account's reference data, oldest first: the first, then
    /// its changes during the span (see the [module docs](self)).
    pub fn versions(&self, config: &ProfileConfig, account: u64) -> Vec<AccountVersion> {
        let mut versions = Vec::new();
        self.each_version(config, account, |version| versions.push(version.clone()));
        versions
    }

    /// The account's home country at `ts`: that of its latest version valid from `ts`
    /// or earlier (the first version's before it opened).
    pub fn home_country_at(&self, config: &ProfileConfig, account: u64, ts: u64) -> &'static str {
        let mut home = self.first.home_country;
        self.each_version(config, account, |version| {
            if version.valid_from <= ts {
                home = version.home_country;
            }
        });
        home
    }

    /// Calls `each` with every version, oldest first (see [`versions`](Self::versions)),
    /// without collecting them: generated transactions ask for one per record.
    fn each_version(
        &self,
        config: &ProfileConfig,
        account: u64,
        mut each: impl FnMut(&AccountVersion),
    ) {
        // A stream of its own, so that changes do not shift the profile's draws.
        let mut rng = rng(config.seed ^ 0x5EED_C4A9_6E5D_0001, account);
        each(&self.first);
        let changes = if unit(&mut rng) >= config.update_share || config.span_ms < 2000 {
            0
        } else if unit(&mut rng) < 0.2 {
            2
        } else {
            1
        };
        let mut from = config.start_ms;
        let end = config.start_ms + config.span_ms;
        let mut version = self.first.clone();
        for n in 0..changes {
            // The first of two changes in the first half of what is left, the last
            // anywhere in it; whole seconds.
            let left = end.saturating_sub(from);
            let window = if changes == 2 && n == 0 {
                left / 2
            } else {
                left
            };
            if window < 1000 {
                break;
            }
            let at = (from + rng.next_u64() % window).div_ceil(1000) * 1000;
            if at >= end {
                break;
            }
            if unit(&mut rng) < 0.5 {
                let factor = if unit(&mut rng) < 0.5 { 1.5 } else { 0.5 };
                let before = version.credit_limit;
                version.credit_limit = round_limit(before as f64 * factor);
                if version.credit_limit == before {
                    version.credit_limit += 500;
                }
            } else {
                version.home_country = weighted_country(&mut rng, Some(version.home_country));
            }
            version.valid_from = at;
            each(&version);
            from = at + 1000;
        }
    }
}

/// Every version of every account's reference data, by account then time.
pub fn accounts(config: &ProfileConfig) -> impl Iterator<Item = AccountVersion> + '_ {
    (0..config.accounts)
        .flat_map(move |account| Profile::of(config, account).versions(config, account))
}

/// The PCG stream of `account` under `seed`.
fn rng(seed: u64, account: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(mix(seed ^ mix(account)))
}

/// A uniform draw in `[0, 1)`.
pub(crate) fn unit(rng: &mut Pcg64Mcg) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A country drawn by [`COUNTRY_WEIGHTS`], other than `not`.
fn weighted_country(rng: &mut Pcg64Mcg, not: Option<&str>) -> &'static str {
    let candidates = || {
        COUNTRY_WEIGHTS
            .iter()
            .enumerate()
            .filter(move |(i, _)| Some(COUNTRIES[*i]) != not)
    };
    let total: u64 = candidates().map(|(_, w)| w).sum();
    let mut pick = rng.next_u64() % total;
    for (i, &weight) in candidates() {
        if pick < weight {
            return COUNTRIES[i];
        }
        pick -= weight;
    }
    COUNTRIES[0]
}

/// `limit` rounded up to a multiple of 500, at least 500.
fn round_limit(limit: f64) -> u64 {
    ((limit / 500.0).ceil().max(1.0) as u64) * 500
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ProfileConfig {
        ProfileConfig {
            seed: 42,
            accounts: 5_000,
            start_ms: 1_714_521_600_000,
            span_ms: 3_600_000,
            update_share: 0.1,
        }
    }

    #[test]
    fn a_profile_depends_on_the_seed_and_the_account_only() {
        let config = config();
        assert_eq!(Profile::of(&config, 17), Profile::of(&config, 17));
        let other = ProfileConfig { seed: 43, ..config };
        let differing = (0..100)
            .filter(|&a| Profile::of(&config, a) != Profile::of(&other, a))
            .count();
        assert!(differing > 95, "{differing}");
        let fewer = ProfileConfig {
            accounts: 10,
            ..config
        };
        assert_eq!(Profile::of(&config, 7), Profile::of(&fewer, 7));
    }

    #[test]
    fn profiles_are_in_their_ranges_and_changes_in_the_span() {
        let config = config();
        let mut changed = 0;
        for account in 0..config.accounts {
            let profile = Profile::of(&config, account);
            let first = &profile.first;
            assert!(
                (5.0..=200.0).contains(&profile.typical_spend),
                "{profile:?}"
            );
            assert!((1940..=2005).contains(&first.birth_year));
            assert!(first.credit_limit >= 500 && first.credit_limit.is_multiple_of(500));
            assert!(first.opened_at < config.start_ms - 29 * DAY_MS);
            assert!(COUNTRIES.contains(&first.home_country));
            let versions = profile.versions(&config, account);
            assert_eq!(versions[0], *first);
            changed += usize::from(versions.len() > 1);
            for pair in versions.windows(2) {
                let (before, after) = (&pair[0], &pair[1]);
                assert!(after.valid_from > before.valid_from, "{versions:?}");
                assert!(
                    (config.start_ms..config.start_ms + config.span_ms).contains(&after.valid_from)
                );
                let limit = before.credit_limit != after.credit_limit;
                let moved = before.home_country != after.home_country;
                assert!(limit ^ moved, "exactly one attribute changes: {versions:?}");
            }
        }
        assert!((350..650).contains(&changed), "{changed} of 5000 changed");
    }
}
