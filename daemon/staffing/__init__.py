"""Surge staffing: how many people to call in, which languages and skills, whom to ask first.

Public surface (the pipeline calls these):
- `StaffingPlanner(settings: StaffingSettings).suggest(load: SurgeLoad) -> StaffingFigures`
  (`daemon.staffing.planner`): once per incident notification; pure, deterministic, picklable.
- `ResponseTracker(settings: StaffingSettings)` (`daemon.staffing.responses`), one per brand:
  `observe(mention, needs_reply)`, or `observe_mention(id, ts, platform)` and
  `observe_reply(in_reply_to, ts)`; `figures(now) -> ResponseFigures`. Its `backlog` feeds
  `SurgeLoad.backlog`.
- `StaffingSettings` (`daemon.staffing.settings`): the `staffing:` configuration section.
- `solve(StaffingQuestion) -> StaffingAnswer` (`daemon.staffing.erlang`): one queue, Erlang C or A.
- `simulate(...)` (`daemon.staffing.simulation`): the discrete-event check used by tests and bench.
"""
