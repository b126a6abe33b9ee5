// The farm command. Subcommands are added by the issues that own them.
return Farm.Cli.CliApp.Run(args);
