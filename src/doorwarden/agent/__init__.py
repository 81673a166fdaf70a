"""The camera agent: capture → motion → clip → seal → spool → upload. Never imports server code."""
