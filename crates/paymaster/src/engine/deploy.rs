//! Account deployments through the Universal Deployer, sponsored, on one path for every
//! front end: SNIP-29's `deploy` (alone) and `deploy_and_invoke` (the deployment first in
//! the relayer transaction that runs the signed calls), and the Chipi wallet creation.
//! A deployment alone is the `(address, deploy)` row: one per address, whoever asks.

use std::sync::Arc;
use std::time::Duration;

use chipi_core::snip29;
use chipi_core::{wallet_address, Call, Felt};
use starknet_rust_core::utils::{get_udc_deployed_address, UdcUniqueness};

use super::build::Quote;
use super::relay::Sponsor;
use super::{selector, Engine, EngineError, UDC_ADDRESS};
use crate::auth::Caller;
use crate::store::{felt_text, Claim};

/// The only deployment version SNIP-29 0.1 has.
pub const DEPLOYMENT_VERSION: u8 = 1;

/// An account to deploy through the UDC, not unique (deployer 0): its address follows from
/// its class, salt and constructor calldata alone, so anyone may send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDeployment {
    /// The counterfactual address.
    pub address: Felt,
    /// The account class.
    pub class: Felt,
    /// The deployment salt.
    pub salt: Felt,
    /// The constructor's calldata.
    pub calldata: Vec<Felt>,
}

impl AccountDeployment {
    /// Our session account for `owner`: salt and constructor calldata are the owner key.
    pub fn session(owner: Felt, class: Felt) -> Self {
        Self {
            address: wallet_address(owner, class),
            class,
            salt: owner,
            calldata: vec![owner],
        }
    }

    /// `deploy_contract(class, salt, not_from_zero = false, calldata)` on the UDC.
    pub fn udc_call(&self) -> Call {
        let mut calldata = vec![
            self.class,
            self.salt,
            Felt::ZERO,
            Felt::from(self.calldata.len()),
        ];
        calldata.extend_from_slice(&self.calldata);
        Call {
            to: UDC_ADDRESS,
            selector: selector("deploy_contract"),
            calldata,
        }
    }
}

/// The refusal of a deployment whose address holds a contract already.
fn already_deployed() -> EngineError {
    EngineError::Deployment(
        "an account is deployed at this address already; send its calls as an invoke".into(),
    )
}

impl Engine {
    /// A served class, or [`EngineError::ClassNotServed`] naming the served ones.
    pub(crate) fn check_served(&self, class: Felt) -> Result<(), EngineError> {
        let served = &self.config.account_classes;
        if served.contains(&class) {
            return Ok(());
        }
        let list: Vec<String> = served.iter().map(|c| format!("{c:#x}")).collect();
        Err(EngineError::ClassNotServed(format!(
            "this paymaster does not deploy class {class:#x}; it serves {}",
            list.join(", ")
        )))
    }

    /// SNIP-29 deployment data, checked: `version` 1, a class of `account_classes`, no
    /// `sigdata`, and `address` the UDC's for (salt, class, calldata, not unique,
    /// deployer 0). Nothing is read from the node.
    ///
    /// `sigdata` is for classes whose constructor takes more than the calldata (a signer's
    /// data, as Braavos does): such a class would have it appended to its constructor
    /// calldata (the UDC passes `calldata ++ sigdata`, and the address is computed over
    /// both). No served class takes any (our session account's constructor is
    /// `[owner key]`), so a non-empty `sigdata` is refused.
    pub fn check_deployment(
        &self,
        data: &snip29::Deployment,
    ) -> Result<AccountDeployment, EngineError> {
        if data.version != DEPLOYMENT_VERSION {
            return Err(EngineError::Deployment(format!(
                "deployment.version: only {DEPLOYMENT_VERSION}"
            )));
        }
        self.check_served(data.class_hash)?;
        if data.sigdata.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(EngineError::Deployment(
                "deployment.sigdata: the served account classes take none".into(),
            ));
        }
        let address = get_udc_deployed_address(
            data.salt,
            data.class_hash,
            &UdcUniqueness::NotUnique,
            &data.calldata,
        );
        if address != data.address {
            return Err(EngineError::Deployment(
                "deployment.address is not the UDC address of this salt, class and calldata (not unique, deployer 0)".into(),
            ));
        }
        Ok(AccountDeployment {
            address,
            class: data.class_hash,
            salt: data.salt,
            calldata: data.calldata.clone(),
        })
    }

    /// `deployment` when it is still to be sent, `None` once a contract is at its address
    /// (the calls then run as an invoke). It must deploy `wallet`.
    pub(crate) async fn pending_deployment(
        &self,
        wallet: Felt,
        deployment: Option<AccountDeployment>,
    ) -> Result<Option<AccountDeployment>, EngineError> {
        let Some(deployment) = deployment else {
            return Ok(None);
        };
        check_deploys(wallet, &deployment)?;
        Ok(match self.is_deployed(wallet).await? {
            true => None,
            false => Some(deployment),
        })
    }

    /// The fee quote of `deployment` alone, `tip` included, after the policy checks a
    /// deployment passes (the class is the deployment's; it makes no calls).
    pub async fn build_deploy(
        &self,
        caller: &Caller,
        deployment: &AccountDeployment,
        tip: u64,
    ) -> Result<Quote, EngineError> {
        let address = deployment.address;
        let user = caller.user_or(&felt_text(address));
        let _in_service = self.enter(caller, &user)?;
        if self.is_deployed(address).await? {
            return Err(already_deployed());
        }
        self.admit(caller, &user, address, Some(deployment.class), &[], true)
            .await?;
        self.quote(address, &[], Some(deployment), tip).await
    }

    /// Deploys `deployment` alone, sponsored, with `tip`: the policy checks, then one
    /// relayer transaction. A retry gets the first request's hash; an address deployed
    /// otherwise is refused.
    pub async fn deploy(
        self: &Arc<Self>,
        caller: &Caller,
        deployment: AccountDeployment,
        tip: u64,
    ) -> Result<Felt, EngineError> {
        let timeout = Duration::from_secs(self.config.http.request_timeout_seconds);
        let deadline = tokio::time::Instant::now() + timeout;
        let address = deployment.address;
        let user = caller.user_or(&felt_text(address));
        let _in_service = self.enter(caller, &user)?;
        if let Some(row) = self.store.transaction(address, None).await? {
            let visible = row.app == caller.app.public_key && caller.owns(&row.user_id, address);
            if visible && !row.status().retryable() {
                return self.outcome(row, timeout).await;
            }
        }
        if self.is_deployed(address).await? {
            return Err(already_deployed());
        }
        self.admit(caller, &user, address, Some(deployment.class), &[], false)
            .await?;
        let hash = self
            .send_deployment(caller, &user, &deployment, tip, deadline)
            .await?;
        tracing::info!(app = %caller.app.name, wallet = %felt_text(address), "account deployment sent");
        Ok(hash)
    }

    /// Claims the `(address, deploy)` row, reserves the app's per-transaction cap and
    /// sends the UDC call from a relayer with `tip`. A deployment another request
    /// claimed answers its hash once it has one.
    pub(crate) async fn send_deployment(
        self: &Arc<Self>,
        caller: &Caller,
        user: &str,
        deployment: &AccountDeployment,
        tip: u64,
        deadline: tokio::time::Instant,
    ) -> Result<Felt, EngineError> {
        let address = deployment.address;
        let id = match self
            .store
            .claim(&caller.app.public_key, user, address, None)
            .await?
        {
            Claim::Owned(id) => id,
            Claim::Taken(taken) => {
                return taken.hash.ok_or_else(|| {
                    EngineError::Unavailable(
                        "this wallet's deployment is being sent; retry the same request".into(),
                    )
                })
            }
        };
        let give_up_at = self.give_up_at();
        let cap = caller.app.policy.fee_cap(self.config.max_fee_fri);
        self.reserve(caller, id, user, address, cap).await?;
        let call = deployment.udc_call();
        let sponsor = Sponsor {
            caller: caller.clone(),
            user: user.to_string(),
            calls: vec![call.clone()],
            cap,
            tip,
            deadline,
            give_up_at,
        };
        let engine = self.clone();
        self.tasks
            .spawn(async move { engine.send(id, address, vec![call], sponsor).await })
            .await
            .map_err(|_| EngineError::Internal)?
    }
}

/// `deployment` deploys `wallet` (the account whose calls follow it).
pub(crate) fn check_deploys(
    wallet: Felt,
    deployment: &AccountDeployment,
) -> Result<(), EngineError> {
    if deployment.address != wallet {
        return Err(EngineError::Deployment(
            "invoke.user_address is not deployment.address".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_deployment_is_the_udc_call_chipi_wallets_always_sent() {
        let (owner, class) = (Felt::from(0x0123u16), Felt::from(0x0c1a55u32));
        let deployment = AccountDeployment::session(owner, class);
        let call = deployment.udc_call();
        assert_eq!(call.to, UDC_ADDRESS);
        assert_eq!(
            call.calldata,
            vec![class, owner, Felt::ZERO, Felt::ONE, owner]
        );
        // The UDC's address without uniqueness is the plain counterfactual one.
        assert_eq!(
            get_udc_deployed_address(owner, class, &UdcUniqueness::NotUnique, &[owner]),
            deployment.address
        );
    }
}
