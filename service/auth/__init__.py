"""Who may do what: reviewer and admin accounts, their tokens, browser sign-in, and askers named by an SSO proxy."""
