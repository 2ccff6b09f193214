/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_cli_help.h: the text of `dpop-audit COMMAND --help` (each
 * command's options, exactly those its parser accepts, and a few examples).
 * CLI only; prints nothing itself.
 */
#ifndef AUDIT_CLI_HELP_H
#define AUDIT_CLI_HELP_H

/* The help of cmd, or NULL for an unknown command. */
const char *audit_cli_help(const char *cmd);

#endif /* AUDIT_CLI_HELP_H */
