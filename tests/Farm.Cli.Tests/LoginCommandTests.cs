using System.Text;
using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>farm login/logout against the htpasswd registry infra/up.sh starts, with a DOCKER_CONFIG of the test's own.</summary>
public sealed class LoginCommandTests : IDisposable
{
    private readonly string _config = Directory.CreateTempSubdirectory("farm-login-").FullName;

    public void Dispose() => Directory.Delete(_config, recursive: true);

    private Dictionary<string, string> Env => new() { ["DOCKER_CONFIG"] = _config };

    private string ConfigFile => Path.Combine(_config, "config.json");

    [Fact]
    public async Task Login_checks_and_saves_the_credentials_where_docker_keeps_them_and_logout_removes_them()
    {
        var registry = TestRegistries.Basic;
        await TestRegistries.EnsureAnsweringAsync(registry);
        await File.WriteAllTextAsync(ConfigFile, """{"auths":{},"credsStore":"","psFormat":"table {{.ID}}"}""");

        var login = await FarmCli.RunAsync(Env, "farm-secret\n", "login", "-u", "farm", "--password-stdin", registry);

        Assert.Equal(0, login.ExitCode);
        Assert.Contains("Login Succeeded", login.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("farm-secret", login.Stdout + login.Stderr, StringComparison.Ordinal);
        var saved = JsonNode.Parse(await File.ReadAllTextAsync(ConfigFile))!;
        Assert.Equal(Convert.ToBase64String(Encoding.UTF8.GetBytes("farm:farm-secret")), (string?)saved["auths"]![registry]!["auth"]);
        Assert.Equal("table {{.ID}}", (string?)saved["psFormat"]);

        var logout = await FarmCli.RunAsync(Env, null, "logout", registry);

        Assert.Equal(0, logout.ExitCode);
        Assert.Null(JsonNode.Parse(await File.ReadAllTextAsync(ConfigFile))!["auths"]![registry]);
    }

    [Fact]
    public async Task A_wrong_password_is_refused_and_nothing_is_saved()
    {
        var registry = TestRegistries.Basic;
        await TestRegistries.EnsureAnsweringAsync(registry);

        var login = await FarmCli.RunAsync(Env, "wrong\n", "login", "-u", "farm", "--password-stdin", registry);

        Assert.Equal(1, login.ExitCode);
        Assert.Matches("^farm: FARM22\\d\\d: .*farm login", login.Stderr.Trim());
        Assert.False(File.Exists(ConfigFile));
    }
}
