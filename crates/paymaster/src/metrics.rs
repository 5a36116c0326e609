//! Prometheus metrics, in a registry of the service's own (two services in one process,
//! as in tests, do not mix their numbers).

use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The service's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route, HTTP status and error code (`ok` for successes).
    pub requests: IntCounterVec,
    /// Request latency by route.
    pub latency: HistogramVec,
    /// Simulations that reverted, by protocol code.
    pub simulation_refusals: IntCounterVec,
    /// Relayer nonces re-read after the node said they were stale.
    pub nonce_resyncs: IntCounter,
    /// Transactions handed to the node.
    pub transactions_sent: IntCounter,
    /// Passes of the follower over the open transactions (a stalled follower stops it).
    pub follower_passes: IntCounter,
    /// Relayer balances (fri of the fee token), as last read.
    pub relayer_balance: GaugeVec,
    /// Sponsorship refusals by app and code (API.md section 10).
    pub sponsorship_refusals: IntCounterVec,
    /// Fees paid for each app's transactions (fri).
    pub sponsored_fees: CounterVec,
    /// Each app's sponsored transactions by final status.
    pub sponsored_transactions: IntCounterVec,
    /// SNIP-29 JSON-RPC calls by method (`other` for unknown ones) and answer (`ok` or
    /// the error code).
    pub rpc_calls: IntCounterVec,
    /// 1, labelled with this instance's id and its database backend: each instance's page
    /// says whose numbers these are (several instances share one database).
    pub instance: IntGaugeVec,
    /// Relayer leases this instance holds now.
    pub leases_held: IntGauge,
}

impl Metrics {
    /// Fresh metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("chipi_paymaster".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "HTTP requests by route, status and code"),
            &["route", "status", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "HTTP request latency").buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["route"],
        )?;
        let simulation_refusals = IntCounterVec::new(
            Opts::new(
                "simulation_refusals_total",
                "Simulations that reverted, by code",
            ),
            &["code"],
        )?;
        let nonce_resyncs = IntCounter::new(
            "nonce_resyncs_total",
            "Relayer nonces re-read after a stale-nonce answer",
        )?;
        let transactions_sent =
            IntCounter::new("transactions_sent_total", "Transactions handed to the node")?;
        let follower_passes = IntCounter::new(
            "follower_passes_total",
            "Passes of the follower over the open transactions",
        )?;
        let relayer_balance = GaugeVec::new(
            Opts::new(
                "relayer_balance_fri",
                "Relayer balance in the fee token (fri)",
            ),
            &["relayer"],
        )?;
        let sponsorship_refusals = IntCounterVec::new(
            Opts::new(
                "sponsorship_refusals_total",
                "Requests refused by an app's sponsorship policy, by app and code",
            ),
            &["app", "code"],
        )?;
        let sponsored_fees = CounterVec::new(
            Opts::new("sponsored_fees_fri_total", "Fees paid for each app (fri)"),
            &["app"],
        )?;
        let sponsored_transactions = IntCounterVec::new(
            Opts::new(
                "sponsored_transactions_total",
                "Each app's sponsored transactions by final status",
            ),
            &["app", "status"],
        )?;
        let rpc_calls = IntCounterVec::new(
            Opts::new(
                "rpc_calls_total",
                "SNIP-29 JSON-RPC calls by method and answer (ok or the error code)",
            ),
            &["method", "code"],
        )?;
        let instance = IntGaugeVec::new(
            Opts::new(
                "instance_info",
                "This instance (its id in the instances table) and its database backend",
            ),
            &["instance", "database"],
        )?;
        let leases_held = IntGauge::new(
            "relayer_leases_held",
            "Relayer leases this instance holds in the database now",
        )?;
        registry.register(Box::new(instance.clone()))?;
        registry.register(Box::new(leases_held.clone()))?;
        registry.register(Box::new(rpc_calls.clone()))?;
        registry.register(Box::new(sponsorship_refusals.clone()))?;
        registry.register(Box::new(sponsored_fees.clone()))?;
        registry.register(Box::new(sponsored_transactions.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(simulation_refusals.clone()))?;
        registry.register(Box::new(nonce_resyncs.clone()))?;
        registry.register(Box::new(transactions_sent.clone()))?;
        registry.register(Box::new(follower_passes.clone()))?;
        registry.register(Box::new(relayer_balance.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            simulation_refusals,
            nonce_resyncs,
            transactions_sent,
            follower_passes,
            relayer_balance,
            sponsorship_refusals,
            sponsored_fees,
            sponsored_transactions,
            rpc_calls,
            instance,
            leases_held,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding our own well-formed families does not fail; an empty page if it did.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}
