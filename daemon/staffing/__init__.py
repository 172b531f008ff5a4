"""Surge staffing: how many people to call in to meet the response-time target."""
