using System.CommandLine;
using Farm.Cli.Remote;
using Farm.Contracts;
using Farm.Oci.Registry;

namespace Farm.Cli;

/// <summary>
/// <c>farm login</c> and <c>farm logout</c>: the same <c>~/.docker/config.json</c> (or <c>$DOCKER_CONFIG</c>) as
/// docker, so a login made by either tool serves both. Credentials are checked against the registry before they
/// are saved, and never printed.
/// </summary>
internal static class LoginCommands
{
    public static Command Login()
    {
        var server = new Argument<string>("SERVER") { Description = "Registry host[:port], e.g. 127.0.0.1:5101." };
        var username = new Option<string?>("--username", "-u") { Description = "User name." };
        var password = new Option<string?>("--password", "-p") { Description = "Password (prefer --password-stdin: a password on the command line lands in shell history)." };
        var passwordStdin = new Option<bool>("--password-stdin") { Description = "Read the password from standard input." };
        var command = new Command("login", "Log in to a registry.") { server, username, password, passwordStdin };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var registry = Normalize(parse.GetValue(server)!);
            var user = parse.GetValue(username);
            var secret = parse.GetValue(password);
            if (parse.GetValue(passwordStdin))
            {
                if (secret is not null)
                {
                    return CliErrors.Report(new InvalidCliArgumentException("--password and --password-stdin are mutually exclusive"), error);
                }

                secret = (await Console.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false)).TrimEnd('\r', '\n');
            }

            if (string.IsNullOrEmpty(user) || string.IsNullOrEmpty(secret))
            {
                return CliErrors.Report(new InvalidCliArgumentException("login needs a user name and a password: farm login -u USER --password-stdin SERVER"), error);
            }

            var credential = new RegistryCredential { Username = user, Password = secret };
            try
            {
                using (var client = new RegistryClient(registry, CliRegistryOptions.FromEnvironment(), StaticCredentialProvider.For(registry, credential)))
                {
                    await client.PingAsync(cancellationToken).ConfigureAwait(false);
                }

                var savedIn = await DockerConfig.Default().LoginAsync(registry, credential, cancellationToken).ConfigureAwait(false);
                output.WriteLine($"Login Succeeded (credentials saved in {savedIn})");
                return 0;
            }
            catch (Exception e) when (CliErrors.Handles(e))
            {
                return CliErrors.Report(e, error);
            }
        });
        return command;
    }

    public static Command Logout()
    {
        var server = new Argument<string>("SERVER") { Description = "Registry host[:port]." };
        var command = new Command("logout", "Remove the saved credentials of a registry.") { server };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var registry = Normalize(parse.GetValue(server)!);
            try
            {
                var removed = await DockerConfig.Default().LogoutAsync(registry, cancellationToken).ConfigureAwait(false);
                parse.InvocationConfiguration.Output.WriteLine(removed ? $"Removing login credentials for {registry}" : $"Not logged in to {registry}");
                return 0;
            }
            catch (Exception e) when (CliErrors.Handles(e))
            {
                return CliErrors.Report(e, parse.InvocationConfiguration.Error);
            }
        });
        return command;
    }

    // docker accepts a URL as well as a host: keep only host[:port].
    private static string Normalize(string server)
    {
        var s = server.Trim();
        foreach (var scheme in new[] { "https://", "http://" })
        {
            if (s.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            {
                s = s[scheme.Length..];
            }
        }

        var slash = s.IndexOf('/', StringComparison.Ordinal);
        return slash >= 0 ? s[..slash] : s;
    }
}
