"""The web console (issue 19): pages served at / behind the browser gate."""
