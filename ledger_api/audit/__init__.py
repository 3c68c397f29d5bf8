"""Regulators: the audit trail, reconciliation against the chain, anomaly reports and exports."""
