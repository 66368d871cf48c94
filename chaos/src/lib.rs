//! The chaos CLI: plans, schedules, supervisor, nemeses, workload, recorder, checker, reports.
