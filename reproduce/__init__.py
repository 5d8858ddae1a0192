"""``usgan reproduce``: the paper's Tables 1 and 2 on one dataset, as resumable steps.

`plan` says what runs (presets, configurations, the OUT layout, each step's command),
`runner` runs it, `report` and `figures` read the results back, `document` writes them.
"""
