"""Reports: terminal summary, JSON and HTML reports, baselines."""
