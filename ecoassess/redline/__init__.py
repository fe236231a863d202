"""Red-line encroachment (issue 19): human-activity patches inside ecological conservation red lines
(STANDARDS §5), their classification, the patch ledger (台账) and its follow-up across runs."""
