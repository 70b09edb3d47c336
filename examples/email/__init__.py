"""E-mail in the background: smtplib in a task that retries temporary refusals with backoff."""
