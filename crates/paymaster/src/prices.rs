//! What a fee costs in the tokens users may pay in (SNIP-29's `default` fee mode): a
//! [`PriceSource`] gives each token's price in fri; [`FixedPrices`] reads them from the
//! configuration (STRK, the fee token, is always there at 1:1). An oracle over HTTP would
//! be another `PriceSource` (refreshing in the background, answering from its cache), with
//! nothing else changed.
//!
//! ```
//! use chipi_paymaster::{FixedPrices, GasTokenConfig, PriceSource, TokenPrice};
//! use chipi_core::Felt;
//!
//! let usdc = Felt::from(0x53c9u16);
//! let prices = FixedPrices::new(Felt::from(0x4718u16), &[GasTokenConfig {
//!     address: usdc,
//!     decimals: 6,
//!     // 1 USDC = 4 STRK.
//!     price_in_strk: 4_000_000_000_000_000_000,
//! }]);
//! let price = prices.price(usdc).unwrap();
//! // 2 STRK of fee is half a USDC, rounded up for the service.
//! assert_eq!(price.to_token(2_000_000_000_000_000_000), Some(500_000));
//! assert_eq!(price.to_fri(500_000), Some(2_000_000_000_000_000_000));
//! assert!(prices.price(Felt::ONE).is_none());
//! ```

use chipi_core::Felt;
use num_bigint::BigUint;

use crate::config::GasTokenConfig;
use crate::policy::ONE_STRK;

/// One token's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPrice {
    /// The ERC-20.
    pub token: Felt,
    /// Its decimals.
    pub decimals: u8,
    /// Fri per whole token (10^decimals units).
    pub fri_per_token: u128,
}

impl TokenPrice {
    fn unit(&self) -> BigUint {
        BigUint::from(10u8).pow(u32::from(self.decimals))
    }

    /// `fri` in the token's units, rounded up (the service is never short); `None` when
    /// it does not fit 128 bits or the price is zero.
    pub fn to_token(&self, fri: u128) -> Option<u128> {
        if self.fri_per_token == 0 {
            return None;
        }
        let price = BigUint::from(self.fri_per_token);
        let scaled = BigUint::from(fri) * self.unit();
        let amount = (scaled + &price - 1u8) / price;
        u128::try_from(amount).ok()
    }

    /// `amount` of the token in fri, rounded down; `None` when it does not fit 128 bits.
    pub fn to_fri(&self, amount: u128) -> Option<u128> {
        let fri = BigUint::from(amount) * BigUint::from(self.fri_per_token) / self.unit();
        u128::try_from(fri).ok()
    }
}

/// Where token prices come from.
pub trait PriceSource: Send + Sync + std::fmt::Debug {
    /// The price of `token` now, if fees can be paid in it.
    fn price(&self, token: Felt) -> Option<TokenPrice>;
    /// Every token fees can be paid in, with its price now.
    fn tokens(&self) -> Vec<TokenPrice>;
}

/// Prices fixed in the configuration (`[[snip29.gas_tokens]]`), and the fee token at 1:1.
#[derive(Debug, Clone)]
pub struct FixedPrices {
    tokens: Vec<TokenPrice>,
}

impl FixedPrices {
    /// The fee token (`fee_token`, 18 decimals, 1 STRK per token) and `configured`.
    pub fn new(fee_token: Felt, configured: &[GasTokenConfig]) -> Self {
        let mut tokens = vec![TokenPrice {
            token: fee_token,
            decimals: 18,
            fri_per_token: ONE_STRK,
        }];
        tokens.extend(
            configured
                .iter()
                .filter(|t| t.address != fee_token)
                .map(|t| TokenPrice {
                    token: t.address,
                    decimals: t.decimals,
                    fri_per_token: t.price_in_strk,
                }),
        );
        Self { tokens }
    }
}

impl PriceSource for FixedPrices {
    fn price(&self, token: Felt) -> Option<TokenPrice> {
        self.tokens.iter().find(|t| t.token == token).copied()
    }

    fn tokens(&self) -> Vec<TokenPrice> {
        self.tokens.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strk_is_one_to_one_and_conversions_round_for_the_service() {
        let prices = FixedPrices::new(Felt::TWO, &[]);
        let strk = prices.price(Felt::TWO).unwrap();
        assert_eq!(strk.to_token(12_345), Some(12_345));
        assert_eq!(strk.to_fri(12_345), Some(12_345));
        // A token worth 3 fri per whole token of 0 decimals: 10 fri cost 4 tokens (3.33 up).
        let odd = TokenPrice {
            token: Felt::ONE,
            decimals: 0,
            fri_per_token: 3,
        };
        assert_eq!(odd.to_token(10), Some(4));
        assert_eq!(odd.to_fri(4), Some(12));
        // Nothing overflows silently.
        let huge = TokenPrice {
            token: Felt::ONE,
            decimals: 36,
            fri_per_token: 1,
        };
        assert_eq!(huge.to_token(u128::MAX), None);
        let free = TokenPrice {
            fri_per_token: 0,
            ..huge
        };
        assert_eq!(free.to_token(1), None);
    }

    #[test]
    fn a_configured_fee_token_does_not_replace_the_one_to_one_price() {
        let prices = FixedPrices::new(
            Felt::TWO,
            &[GasTokenConfig {
                address: Felt::TWO,
                decimals: 6,
                price_in_strk: 1,
            }],
        );
        assert_eq!(prices.tokens().len(), 1);
        assert_eq!(prices.price(Felt::TWO).unwrap().fri_per_token, ONE_STRK);
    }
}
