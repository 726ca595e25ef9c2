"""What runs, compared with what was declared: observed settings, drift, the auditor, --deep,
--watch and the findings they produce."""
