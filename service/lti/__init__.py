"""LTI 1.3 Advantage tool: registrations, keys, launches, deep linking, roster and grade passback."""
