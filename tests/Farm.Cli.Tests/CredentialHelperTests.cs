using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// docker's credential helpers (<c>credsStore</c>, <c>credHelpers</c>) in farm login, push, pull and logout, with a
/// small helper script on PATH and the htpasswd registry.
/// </summary>
public sealed class CredentialHelperTests : IDisposable
{
    // docker-credential-farmtest: keeps each server's JSON in a file beside itself, and logs which actions ran.
    private const string HelperScript = """
        #!/bin/sh
        here=$(dirname "$0"); db="$here/db"; mkdir -p "$db"
        echo "$1" >> "$here/calls"
        key() { echo "$1" | tr ':/' '__'; }
        case "$1" in
          get) read -r server; f="$db/$(key "$server")"
               if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
          store) input=$(cat); server=$(echo "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
               printf '%s' "$input" > "$db/$(key "$server")" ;;
          erase) read -r server; rm "$db/$(key "$server")" 2>/dev/null || { echo "credentials not found in native keychain"; exit 1; } ;;
          *) echo "unknown action $1"; exit 1 ;;
        esac
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("farm-credhelper-").FullName;

    public CredentialHelperTests()
    {
        var helper = Path.Combine(_dir, "bin", "docker-credential-farmtest");
        Directory.CreateDirectory(Path.GetDirectoryName(helper)!);
        File.WriteAllText(helper, HelperScript.Replace("\r", "", StringComparison.Ordinal) + "\n");
        File.SetUnixFileMode(helper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string DockerDir => Path.Combine(_dir, "docker");

    private Dictionary<string, string> Env => new()
    {
        ["FARM_STATE_DIR"] = Path.Combine(_dir, "state"),
        ["DOCKER_CONFIG"] = DockerDir,
        ["PATH"] = Path.Combine(_dir, "bin") + ":" + Environment.GetEnvironmentVariable("PATH"),
    };

    private async Task<CliProcess.Result> Farm(string? stdin, params string[] args)
    {
        var result = await FarmCli.RunAsync(Env, stdin, args);
        Assert.DoesNotContain(TestRegistries.BasicPassword, result.Stdout + result.Stderr, StringComparison.Ordinal);
        return result;
    }

    private void WriteConfig(JsonObject config)
    {
        Directory.CreateDirectory(DockerDir);
        File.WriteAllText(Path.Combine(DockerDir, "config.json"), config.ToJsonString());
    }

    [Fact]
    public async Task Login_with_credsStore_stores_through_the_helper_and_push_and_logout_use_it()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Basic);
        WriteConfig(new JsonObject { ["credsStore"] = "farmtest" });
        var remote = $"{TestRegistries.Basic}/t{Guid.NewGuid():N}/bb:1";
        Ok(await Farm(null, "import", Rootfs(), remote));

        var login = Ok(await Farm(TestRegistries.BasicPassword + "\n", "login", "-u", TestRegistries.BasicUser, "--password-stdin", TestRegistries.Basic));
        Assert.Contains("Login Succeeded (credentials saved in docker-credential-farmtest)", login, StringComparison.Ordinal);

        // The file keeps the helper and an empty entry, as docker's; the secret is in the helper's keeping only.
        var config = await File.ReadAllTextAsync(Path.Combine(DockerDir, "config.json"));
        Assert.DoesNotContain(TestRegistries.BasicPassword, config, StringComparison.Ordinal);
        Assert.Equal("{}", JsonNode.Parse(config)!["auths"]![TestRegistries.Basic]!.ToJsonString());
        var stored = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_dir, "bin", "db", TestRegistries.Basic.Replace(':', '_'))))!;
        Assert.Equal(TestRegistries.BasicUser, (string?)stored["Username"]);
        Assert.Equal(TestRegistries.BasicPassword, (string?)stored["Secret"]);
        Assert.Equal(TestRegistries.Basic, (string?)stored["ServerURL"]);

        Assert.Contains("digest: sha256:", Ok(await Farm(null, "push", remote)), StringComparison.Ordinal);
        Assert.Contains("get", await File.ReadAllLinesAsync(Path.Combine(_dir, "bin", "calls")));

        Assert.Contains($"Removing login credentials for {TestRegistries.Basic}", Ok(await Farm(null, "logout", TestRegistries.Basic)), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "bin", "db", TestRegistries.Basic.Replace(':', '_'))));
        var refused = await Farm(null, "push", remote);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("login", refused.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_credHelpers_entry_wins_over_auths_and_a_missing_helper_is_FARM5101()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Basic);
        var remote = $"{TestRegistries.Basic}/t{Guid.NewGuid():N}/bb:1";
        Ok(await Farm(null, "import", Rootfs(), remote));

        // The helper holds the right password; the file's own entry for the host a wrong one, which docker would not use either.
        Directory.CreateDirectory(Path.Combine(_dir, "bin", "db"));
        await File.WriteAllTextAsync(Path.Combine(_dir, "bin", "db", TestRegistries.Basic.Replace(':', '_')),
            new JsonObject { ["ServerURL"] = TestRegistries.Basic, ["Username"] = TestRegistries.BasicUser, ["Secret"] = TestRegistries.BasicPassword }.ToJsonString());
        WriteConfig(new JsonObject
        {
            ["auths"] = new JsonObject { [TestRegistries.Basic] = new JsonObject { ["auth"] = Convert.ToBase64String("farm:wrong-password"u8.ToArray()) } },
            ["credHelpers"] = new JsonObject { [TestRegistries.Basic] = "farmtest" },
        });
        Assert.Contains("digest: sha256:", Ok(await Farm(null, "push", remote)), StringComparison.Ordinal);
        Ok(await Farm(null, "rmi", remote));
        Assert.Contains("Digest: sha256:", Ok(await Farm(null, "pull", remote)), StringComparison.Ordinal);

        WriteConfig(new JsonObject { ["credsStore"] = "absent" + Guid.NewGuid().ToString("N")[..6] });
        var missing = await Farm(null, "push", remote);
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("farm: FARM5101: ", missing.Stderr, StringComparison.Ordinal);
        Assert.Contains("is not on PATH", missing.Stderr, StringComparison.Ordinal);
    }

    private string Rootfs() => BusyboxRootfs.Write(Path.Combine(_dir, "rootfs.tar"), ["tmp"], new Dictionary<string, string>());

    private static string Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
        return result.Stdout;
    }
}
