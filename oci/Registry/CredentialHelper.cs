using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Contracts;

namespace Farm.Oci.Registry;

/// <summary>FARM5101: a docker credential helper named in the Docker config is missing, or failed.</summary>
/// <remarks>The message carries the helper's own words when it failed, never the secret sent to it.</remarks>
public sealed class CredentialHelperException(string helper, string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.CredentialHelper, message, inner)
{
    /// <summary>The helper's name, as in <c>credsStore</c> or <c>credHelpers</c> (<c>docker-credential-NAME</c>).</summary>
    public string Helper { get; } = helper;
}

/// <summary>
/// One docker credential helper, <c>docker-credential-NAME</c> on PATH, spoken to as docker does: the action as the
/// only argument (<c>get</c>, <c>store</c>, <c>erase</c>), the server on standard input, JSON back on standard output.
/// </summary>
/// <remarks>
/// https://github.com/docker/docker-credential-helpers (the protocol); https://docs.docker.com/reference/cli/docker/login/#credential-helper-protocol.
/// Written by hand: the protocol is three process calls, and no .NET library speaks it.
/// </remarks>
internal sealed class CredentialHelper
{
    // A helper answers at once or waits for a user to unlock a keychain; a minute covers both, a hung one ends.
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);

    // What docker-credential-helpers prints when it holds nothing for a server (credentials.ErrCredentialsNotFound).
    private const string NotFound = "credentials not found in native keychain";

    private CredentialHelper(string name) => Name = name;

    /// <summary>The NAME of <c>docker-credential-NAME</c>.</summary>
    public string Name { get; }

    /// <summary>The helper called <paramref name="name"/>; only a plain name, so that a config cannot point at a path.</summary>
    public static CredentialHelper Named(string name, string configPath)
    {
        if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') || name.StartsWith('.'))
        {
            throw new CredentialHelperException(name, $"the credential helper name '{name}' in {configPath} is not a plain name (letters, digits, '-', '_', '.'); fix credsStore or credHelpers.");
        }

        return new CredentialHelper(name);
    }

    /// <summary><c>get</c>: the credential the helper holds for <paramref name="serverUrl"/>, or null when it holds none.</summary>
    public async Task<RegistryCredential?> GetAsync(string serverUrl, CancellationToken cancellationToken)
    {
        var (exitCode, output) = await RunAsync("get", serverUrl, cancellationToken).ConfigureAwait(false);
        if (exitCode != 0)
        {
            if (output.Contains(NotFound, StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            throw Failed("get", serverUrl, output);
        }

        JsonObject? answer;
        try
        {
            answer = JsonNode.Parse(output) as JsonObject;
        }
        catch (JsonException e)
        {
            throw new CredentialHelperException(Name, $"docker-credential-{Name} get answered something that is not JSON for {serverUrl}; check the helper.", e);
        }

        var user = (string?)answer?["Username"];
        var secret = (string?)answer?["Secret"];
        return string.IsNullOrEmpty(user) || string.IsNullOrEmpty(secret) ? null : new RegistryCredential { Username = user, Password = secret };
    }

    /// <summary><c>store</c>: hands <paramref name="credential"/> for <paramref name="serverUrl"/> to the helper.</summary>
    public async Task StoreAsync(string serverUrl, RegistryCredential credential, CancellationToken cancellationToken)
    {
        var input = new JsonObject { ["ServerURL"] = serverUrl, ["Username"] = credential.Username, ["Secret"] = credential.Password }.ToJsonString();
        var (exitCode, output) = await RunAsync("store", input, cancellationToken).ConfigureAwait(false);
        if (exitCode != 0)
        {
            throw Failed("store", serverUrl, output);
        }
    }

    /// <summary><c>erase</c>: removes what the helper holds for <paramref name="serverUrl"/>; true when it held something.</summary>
    public async Task<bool> EraseAsync(string serverUrl, CancellationToken cancellationToken)
    {
        var (exitCode, output) = await RunAsync("erase", serverUrl, cancellationToken).ConfigureAwait(false);
        if (exitCode == 0)
        {
            return true;
        }

        return output.Contains(NotFound, StringComparison.OrdinalIgnoreCase) ? false : throw Failed("erase", serverUrl, output);
    }

    private CredentialHelperException Failed(string action, string serverUrl, string output)
    {
        // The helper's message (its stdout on failure, per the protocol); cut short, it explains, it is not data.
        var said = output.Trim();
        said = said.Length > 200 ? said[..200] + "…" : said;
        return new CredentialHelperException(Name, $"docker-credential-{Name} {action} failed for {serverUrl}: {(said.Length > 0 ? said : "no message")}. Check the helper, or remove it from the Docker config.");
    }

    private async Task<(int ExitCode, string Output)> RunAsync(string action, string input, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("docker-credential-" + Name)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(action);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new CredentialHelperException(Name, $"docker-credential-{Name} did not start.");
        }
        catch (Win32Exception e)
        {
            throw new CredentialHelperException(Name, $"the Docker config names the credential helper '{Name}', but docker-credential-{Name} is not on PATH; install it, or remove credsStore/credHelpers from the Docker config.", e);
        }

        using (process)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Timeout);
            try
            {
                var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
                var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
                try
                {
                    await process.StandardInput.WriteAsync(input.AsMemory(), timeout.Token).ConfigureAwait(false);
                    process.StandardInput.Close();
                }
                catch (IOException)
                {
                    // A helper may exit without reading its input; its exit code and output say why.
                }

                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
                var output = await stdout.ConfigureAwait(false);
                var errors = await stderr.ConfigureAwait(false);
                return (process.ExitCode, process.ExitCode == 0 ? output : output + errors);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                process.Kill(entireProcessTree: true);
                throw new CredentialHelperException(Name, $"docker-credential-{Name} {action} did not answer within {Timeout.TotalSeconds:0} seconds; check the helper.", e);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
        }
    }
}
