"""What a traveller pays: currencies (`currency.py`) and prices with markups and exchange
rates (`prices.py`). Imports only `config` and `domain`; the schema and the app use it.
"""
