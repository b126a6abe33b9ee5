using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// The farm over secured services (<see cref="TlsServicesFixture"/>): RabbitMQ only over AMQPS, Redis only over TLS
/// with an ACL user. A build goes through all of it; a certificate the client was not told to trust, a wrong Redis
/// password or a Redis certificate for another host stop what would connect, with a FARM code and no secret shown.
/// </summary>
public sealed class TlsServicesTests(TlsServicesFixture farm) : IClassFixture<TlsServicesFixture>
{
    private string Context(string marker)
    {
        var dir = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), $"""
            FROM {farm.Base}
            COPY msg.txt /msg.txt
            RUN echo "over tls {marker}" > /out.txt
            """);
        File.WriteAllText(Path.Combine(dir, "msg.txt"), marker + "\n");
        return dir;
    }

    [Fact]
    public async Task A_build_submitted_over_AMQPS_runs_on_a_worker_over_AMQPS_with_the_coordinators_state_in_Redis_over_TLS()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];

        var submitted = await FarmCli.RunAsync(farm.Env(), null, "submit", Context(marker));

        Assert.True(submitted.ExitCode == 0, submitted + farm.Diagnostics());
        var id = submitted.Stdout.Trim();
        var status = await farm.EndedAsync(id);
        Assert.True((string?)status["status"] == "succeeded", status.ToJsonString() + farm.Diagnostics());
        var run = status["steps"]!.AsArray().Single(s => ((string?)s!["display"])?.Contains("RUN", StringComparison.Ordinal) == true)!;
        Assert.Equal(TlsServicesFixture.WorkerName, (string?)run["worker"]);

        // The build's events are in the TLS Redis, readable only as its ACL user.
        var events = await Tool.RunAsync(
            "redis-cli", "--tls", "--cacert", farm.Certificates.CaPath, "-h", "127.0.0.1", "-p", farm.Redis.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--user", "farm-coordinator", "--pass", farm.RedisPassword, "--no-auth-warning", "exists", "farm:build-events:" + Guid.Parse(id).ToString("N"));
        Assert.Equal("1", events.Trim());

        var output = farm.Coordinator.Output();
        Assert.DoesNotContain(farm.RedisPassword, output, StringComparison.Ordinal);
        Assert.DoesNotContain(farm.RabbitMq.Password, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Farm_submit_over_AMQPS_refuses_a_server_it_cannot_verify_and_a_CA_file_it_cannot_read()
    {
        var context = Context("refused");

        // The system's roots do not include the test CA; another CA is not the one that signed the node's certificate.
        var noCa = farm.Env();
        noCa.Remove("FARM_RABBITMQ_CA");
        var untrusted = await FarmCli.RunAsync(noCa, null, "submit", context);
        var otherCa = farm.Env();
        otherCa["FARM_RABBITMQ_CA"] = TestCertificates.Create(Path.Combine(farm.Directory, "other-ca-" + Guid.NewGuid().ToString("N")[..8])).CaPath;
        var wrongCa = await FarmCli.RunAsync(otherCa, null, "submit", context);
        foreach (var refused in new[] { untrusted, wrongCa })
        {
            Assert.True(refused.ExitCode != 0 && refused.Stderr.Contains("FARM5016", StringComparison.Ordinal) && refused.Stderr.Contains("certificate", StringComparison.OrdinalIgnoreCase), refused.ToString());
            Assert.DoesNotContain(farm.RabbitMq.Password, refused.Stdout + refused.Stderr, StringComparison.Ordinal);
        }

        var missing = farm.Env();
        missing["FARM_RABBITMQ_CA"] = Path.Combine(farm.Directory, "no-such-ca.crt");
        var unreadable = await FarmCli.RunAsync(missing, null, "submit", context);
        Assert.True(unreadable.ExitCode != 0 && unreadable.Stderr.Contains("FARM3030", StringComparison.Ordinal) && unreadable.Stderr.Contains("FARM_RABBITMQ_CA", StringComparison.Ordinal), unreadable.ToString());
    }

    [Fact]
    public async Task A_coordinator_refused_by_Redis_does_not_start_and_never_shows_the_password()
    {
        var wrong = "wrong-" + Guid.NewGuid().ToString("N");
        var withWrongPassword = $"127.0.0.1:{farm.Redis.Port},user=farm-coordinator,password={wrong},ssl=true";
        // The right password, but the certificate checked for a host name it was not issued for.
        var forAnotherHost = farm.Redis.Configuration + ",sslHost=redis.farm.example";

        foreach (var (redis, secret) in new[] { (withWrongPassword, wrong), (forAnotherHost, farm.RedisPassword) })
        {
            await using var coordinator = CoordinatorProcess.Start(farm.RabbitMq.AmqpsUrl, 0, $"registry://{farm.Repository}/cache", Path.Combine(farm.Directory, "refused-" + Guid.NewGuid().ToString("N")[..8]), farm.CoordinatorEnvironment(redis));

            var code = await coordinator.WaitForExitAsync(TimeSpan.FromSeconds(120));

            var output = coordinator.Output();
            Assert.True(code != 0, output);
            Assert.Contains("farm-coordinator: FARM4251:", output, StringComparison.Ordinal);
            Assert.Contains("user 'farm-coordinator'", output, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, output, StringComparison.Ordinal);
        }
    }
}
