"""Disclosure on time: campaign end dates, reports and disposals of remaining funds
(contract 2.3.0), and the compliance calendar computed from them under a rule set."""
