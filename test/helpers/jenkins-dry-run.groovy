// A dry run of a declarative Jenkinsfile: the Groovy compiler parses it (a syntax error fails here), then
// it is evaluated against a small stand-in for the pipeline DSL that records, in order, the environment,
// each stage's `sh` steps with the credentials bound around them, and the `post` steps. The result is one
// JSON document on stdout, which the test replays with a real shell against a real registry.
//
// usage: groovy jenkins-dry-run.groovy JENKINSFILE BUILD_NUMBER
import groovy.json.JsonOutput

class Recorder {
    Map env = [:]
    List steps = []
    String stage = null
    Map credentials = null
    String buildNumber

    def propertyMissing(String name) {
        if (name == 'BUILD_NUMBER') return buildNumber
        if (env.containsKey(name)) return env[name]
        throw new MissingPropertyException("undefined variable ${name}", name, Recorder)
    }

    def pipeline(Closure body) { run(body) }
    def agent(Object any) {}
    def getAny() { 'any' }
    def environment(Closure body) {
        def target = new EnvCollector(recorder: this)
        body.delegate = target
        body.resolveStrategy = Closure.DELEGATE_FIRST
        body()
    }
    def stages(Closure body) { run(body) }
    def stage(String name, Closure body) {
        stage = name
        run(body)
        stage = null
    }
    def steps(Closure body) { run(body) }
    def sh(String script) { steps << [stage: stage, sh: script, credentials: credentials] }
    def usernamePassword(Map args) { args }
    def withCredentials(List bindings, Closure body) {
        if (bindings.size() != 1) throw new IllegalArgumentException('one credentials binding expected')
        credentials = bindings[0]
        run(body)
        credentials = null
    }
    def post(Closure body) { stage = 'post'; run(body); stage = null }
    def always(Closure body) { run(body) }

    private def run(Closure body) {
        body.delegate = this
        body.resolveStrategy = Closure.DELEGATE_FIRST
        body()
    }
}

class EnvCollector {
    Recorder recorder
    void setProperty(String name, Object value) {
        if (name == 'recorder') { this.@recorder = (Recorder) value; return }
        recorder.env[name] = value.toString()
    }
    def getProperty(String name) {
        if (name == 'recorder') return this.@recorder
        return recorder.propertyMissing(name)
    }
}

if (args.length != 2) {
    System.err.println('usage: jenkins-dry-run.groovy JENKINSFILE BUILD_NUMBER')
    System.exit(2)
}
def recorder = new Recorder(buildNumber: args[1])
def script = new GroovyShell().parse(new File(args[0]))
script.metaClass.methodMissing = { String name, Object a -> recorder.invokeMethod(name, a) }
script.metaClass.propertyMissing = { String name -> recorder.getProperty(name) }
script.run()
println JsonOutput.toJson([env: recorder.env, steps: recorder.steps])
